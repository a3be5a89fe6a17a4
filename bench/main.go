// Command bench compares reprise with GNU make and ninja on the same
// generated graph (one stamp-file recipe per node for the peers) and prints
// each figure beside its peer as a ratio measured in the same run: medians
// of several runs. `make bench` runs it; see bench/RESULTS.md.
//
//	go run ./bench [-n 10000] [-repeat 5] [-big 100000] [-reprise bin/reprise]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	n := flag.Int("n", 10000, "nodes in the generated graph")
	repeat := flag.Int("repeat", 5, "runs of each measurement (the median is shown)")
	big := flag.Int("big", 100000, "nodes of the large resume measurement (0: skip)")
	bin := flag.String("reprise", "bin/reprise", "the reprise binary")
	par := flag.Int("parallelism", 8, "reprise --parallelism")
	jobs := flag.Int("j", 2, "make and ninja -j")
	keep := flag.Bool("keep", false, "keep the work folder")
	flag.Parse()
	if err := run(*n, *repeat, *big, *bin, *par, *jobs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type figure struct {
	name           string
	reprise, peer  time.Duration
	peerName       string
	target         string
	targetRatio    float64 // reprise/peer must stay under (0: no target)
	strictlyBelow  bool
	absoluteTarget time.Duration // reprise must stay under (0: none)
}

func run(n, repeat, big int, bin string, par, jobs int, keep bool) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("reprise binary: %w (run `make build` first)", err)
	}
	work, err := os.MkdirTemp("", "reprise-bench-*")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("work folder:", work)
	}
	g := generate(n, 100, 2, 1)
	if err := g.write(work); err != nil {
		return err
	}
	_, ninjaErr := exec.LookPath("ninja")
	hasNinja := ninjaErr == nil
	fmt.Printf("graph: %d nodes in layers of 100, %d edges; reprise --parallelism %d, make/ninja -j%d; %d runs each, medians\n",
		n, g.edges(), par, jobs, repeat)
	fmt.Printf("machine: %d CPUs, load %s\n\n", numCPU(), loadAvg())

	var figs []figure
	var stateSize int64
	steps := []step{
		{"make fresh", func() (time.Duration, error) {
			os.RemoveAll(filepath.Join(work, "s"))
			return timed(work, nil, "make", "-s", "-j", fmt.Sprint(jobs), "-f", "Makefile")
		}},
		{"make no-op", func() (time.Duration, error) {
			return timed(work, nil, "make", "-s", "-j", fmt.Sprint(jobs), "-f", "Makefile")
		}},
		{"reprise run noop", func() (time.Duration, error) {
			db := filepath.Join(work, "noop.db")
			removeState(db)
			d, err := timed(work, nil, bin, "run", "-q", "--state", db, "--parallelism", fmt.Sprint(par), "graph-noop.json")
			if fi, serr := os.Stat(db); serr == nil {
				stateSize = fi.Size()
			}
			return d, err
		}},
		{"reprise resume (succeeded)", func() (time.Duration, error) {
			db := filepath.Join(work, "noop.db")
			return timed(work, nil, bin, "resume", "-q", "--state", db, lastRun(bin, db))
		}},
		{"reprise status (reads every record)", func() (time.Duration, error) {
			db := filepath.Join(work, "noop.db")
			return timed(work, nil, bin, "status", "--json", "--state", db, lastRun(bin, db))
		}},
		{"reprise run exec true", func() (time.Duration, error) {
			db := filepath.Join(work, "exec.db")
			removeState(db)
			return timed(work, nil, bin, "run", "-q", "--state", db, "--parallelism", fmt.Sprint(par), "graph-exec.json")
		}},
	}
	if hasNinja {
		steps = append(steps, step{"ninja fresh", func() (time.Duration, error) {
			os.RemoveAll(filepath.Join(work, "s"))
			os.Remove(filepath.Join(work, ".ninja_log"))
			os.Remove(filepath.Join(work, ".ninja_deps"))
			return timed(work, nil, "ninja", "-j", fmt.Sprint(jobs))
		}}, step{"ninja no-op", func() (time.Duration, error) {
			return timed(work, nil, "ninja", "-j", fmt.Sprint(jobs))
		}})
	}
	res := interleave(repeat, steps)
	makeFresh, makeNoop, noopRun, resume, status, execRun := res[0], res[1], res[2], res[3], res[4], res[5]
	var ninjaFresh, ninjaNoop result
	if hasNinja {
		ninjaFresh, ninjaNoop = res[6], res[7]
	}
	figs = append(figs,
		figure{name: fmt.Sprintf("%d noop nodes, durable state", n), reprise: noopRun.d, peer: makeFresh.d, peerName: fmt.Sprintf("make -j%d", jobs), target: "≤ 0.12×", targetRatio: 0.12},
		figure{name: fmt.Sprintf("%d exec `true` nodes, durable state", n), reprise: execRun.d, peer: makeFresh.d, peerName: fmt.Sprintf("make -j%d", jobs), target: "≤ 1.0×", targetRatio: 1.0},
		figure{name: fmt.Sprintf("resume of a succeeded %d-node run", n), reprise: resume.d, peer: makeNoop.d, peerName: "make no-op rerun", target: "≤ 2×", targetRatio: 2},
		figure{name: "status of that run (every record read)", reprise: status.d, peer: makeNoop.d, peerName: "make no-op rerun"},
	)
	if hasNinja {
		figs = append(figs,
			figure{name: fmt.Sprintf("%d noop nodes, durable state", n), reprise: noopRun.d, peer: ninjaFresh.d, peerName: fmt.Sprintf("ninja -j%d", jobs)},
			figure{name: fmt.Sprintf("%d exec `true` nodes, durable state", n), reprise: execRun.d, peer: ninjaFresh.d, peerName: fmt.Sprintf("ninja -j%d", jobs)},
			figure{name: fmt.Sprintf("resume of a succeeded %d-node run", n), reprise: resume.d, peer: ninjaNoop.d, peerName: "ninja no-op rerun"},
		)
	}
	var bigResume result
	var bigSize int64
	if big > 0 {
		bg := generate(big, 100, 2, 2)
		bdir := filepath.Join(work, "big")
		if err := os.MkdirAll(bdir, 0o755); err != nil {
			return err
		}
		if err := bg.writeJSON(filepath.Join(bdir, "graph-noop.json"), false); err != nil {
			return err
		}
		db := filepath.Join(bdir, "big.db")
		fmt.Printf("building the %d-node fixture (one run, fsync off for the fixture only)…\n", big)
		if _, err := timed(bdir, []string{"REPRISE_UNSAFE_NOSYNC=1"}, bin, "run", "-q", "--state", db, "graph-noop.json"); err != nil {
			return fmt.Errorf("big fixture: %w", err)
		}
		if fi, err := os.Stat(db); err == nil {
			bigSize = fi.Size()
		}
		id := lastRun(bin, db)
		bigRes := interleave(repeat, []step{{"reprise resume (big, succeeded)", func() (time.Duration, error) {
			return timed(bdir, nil, bin, "resume", "-q", "--state", db, id)
		}}, {"reprise status (big)", func() (time.Duration, error) {
			return timed(bdir, nil, bin, "status", "--json", "--state", db, id)
		}}})
		bigResume = bigRes[0]
		figs = append(figs, figure{name: fmt.Sprintf("resume of a succeeded %d-node run", big), reprise: bigResume.d, target: "< 1 s", absoluteTarget: time.Second},
			figure{name: "status of that run (every record read)", reprise: bigRes[1].d})
		res = append(res, bigRes...)
	}
	print(figs, res)
	fmt.Printf("\nstate file: %d bytes for %d nodes = %.0f bytes/node (target < 2048)", stateSize, n, float64(stateSize)/float64(n))
	if bigSize > 0 {
		fmt.Printf("; %d bytes for %d nodes = %.0f bytes/node", bigSize, big, float64(bigSize)/float64(big))
	}
	fmt.Println()
	if !hasNinja {
		fmt.Println("ninja not found (apt-get install ninja-build): its figures are left out")
	}
	return errors.Join(noopRun.err, execRun.err, resume.err, status.err, makeFresh.err, makeNoop.err, ninjaFresh.err, ninjaNoop.err, bigResume.err)
}

func print(figs []figure, rs []result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\treprise\tpeer\tpeer time\tratio\ttarget\tmet\t")
	for _, f := range figs {
		ratio, peer, met := "", "", ""
		if f.peer > 0 {
			r := float64(f.reprise) / float64(f.peer)
			ratio = fmt.Sprintf("%.2f×", r)
			peer = secs(f.peer)
			if f.targetRatio > 0 {
				met = yes(r < f.targetRatio || (!f.strictlyBelow && r <= f.targetRatio))
			}
		}
		if f.absoluteTarget > 0 {
			met = yes(f.reprise < f.absoluteTarget)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.name, secs(f.reprise), f.peerName, peer, ratio, f.target, met)
	}
	tw.Flush()
	fmt.Println("\nall runs (s):")
	for _, r := range rs {
		if len(r.all) > 0 {
			fmt.Printf("  %-32s %s\n", r.name, r.describe())
		}
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

type result struct {
	name string
	d    time.Duration
	all  []time.Duration
	err  error
}

func (r result) describe() string {
	parts := make([]string, len(r.all))
	for i, d := range r.all {
		parts[i] = fmt.Sprintf("%.3f", d.Seconds())
	}
	return strings.Join(parts, " ")
}

// step is one measurement.
type step struct {
	name string
	f    func() (time.Duration, error)
}

// interleave runs every step once per round, rounds times, so that each
// figure and its peer see the same machine load, and returns the results
// (medians) in the order of steps. Progress goes to stderr.
func interleave(rounds int, steps []step) []result {
	res := make([]result, len(steps))
	for i, s := range steps {
		res[i].name = s.name
	}
	for k := 0; k < rounds; k++ {
		for i, s := range steps {
			if res[i].err != nil {
				continue
			}
			d, err := s.f()
			if err != nil {
				res[i].err = err
				fmt.Fprintf(os.Stderr, "round %d: %s: %v\n", k+1, s.name, err)
				continue
			}
			res[i].all = append(res[i].all, d)
			fmt.Fprintf(os.Stderr, "round %d: %-32s %.3f s\n", k+1, s.name, d.Seconds())
		}
	}
	for i := range res {
		if len(res[i].all) > 0 {
			sorted := append([]time.Duration(nil), res[i].all...)
			sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
			res[i].d = sorted[len(sorted)/2]
		}
	}
	return res
}

func timed(dir string, env []string, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t := time.Now()
	err := cmd.Run()
	d := time.Since(t)
	if err != nil {
		return d, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return d, nil
}

func removeState(db string) {
	for _, suffix := range []string{"", ".log", ".holder", ".sock"} {
		os.Remove(db + suffix)
	}
}

// lastRun returns the id of the newest run of a state file.
func lastRun(bin, db string) string {
	out, err := exec.Command(bin, "runs", "--json", "--state", db).Output()
	if err != nil {
		return ""
	}
	var runs []struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(out, &runs) != nil || len(runs) == 0 {
		return ""
	}
	return runs[0].ID
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// graph is a generated DAG: layers of width nodes, each node after the first
// layer depending on fanIn nodes of the layer before.
type graph struct {
	n    int
	deps [][]int
}

func generate(n, width, fanIn int, seed uint64) graph {
	r := rand.New(rand.NewPCG(seed, 42))
	g := graph{n: n, deps: make([][]int, n)}
	for i := width; i < n; i++ {
		layer := i / width
		seen := map[int]bool{}
		for k := 0; k < fanIn; k++ {
			d := (layer-1)*width + r.IntN(width)
			if !seen[d] {
				seen[d] = true
				g.deps[i] = append(g.deps[i], d)
			}
		}
		sort.Ints(g.deps[i])
	}
	return g
}

func (g graph) edges() int {
	e := 0
	for _, d := range g.deps {
		e += len(d)
	}
	return e
}

func id(i int) string { return fmt.Sprintf("n%06d", i) }

func (g graph) write(dir string) error {
	if err := g.writeJSON(filepath.Join(dir, "graph-noop.json"), false); err != nil {
		return err
	}
	if err := g.writeJSON(filepath.Join(dir, "graph-exec.json"), true); err != nil {
		return err
	}
	var mk, nj strings.Builder
	mk.WriteString("all:")
	for i := 0; i < g.n; i++ {
		mk.WriteString(" s/" + id(i))
	}
	mk.WriteString("\n")
	nj.WriteString("rule stamp\n  command = touch $out\nbuild s: phony\n")
	for i := 0; i < g.n; i++ {
		fmt.Fprintf(&mk, "s/%s:", id(i))
		fmt.Fprintf(&nj, "build s/%s: stamp", id(i))
		if i < 100 {
			mk.WriteString(" | s")
		}
		for _, d := range g.deps[i] {
			fmt.Fprintf(&mk, " s/%s", id(d))
			fmt.Fprintf(&nj, " s/%s", id(d))
		}
		mk.WriteString("\n\t@touch $@\n")
		nj.WriteString("\n")
	}
	mk.WriteString("s:\n\t@mkdir -p s\n")
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "build.ninja"), []byte(nj.String()), 0o644)
}

func (g graph) writeJSON(path string, execTrue bool) error {
	type node struct {
		ID        string         `json:"id"`
		Kind      string         `json:"kind"`
		Plugin    string         `json:"plugin"`
		DependsOn []string       `json:"depends_on,omitempty"`
		With      map[string]any `json:"with,omitempty"`
	}
	doc := struct {
		Version int    `json:"version"`
		Name    string `json:"name"`
		Nodes   []node `json:"nodes"`
	}{Version: 1, Name: fmt.Sprintf("bench-%d", g.n)}
	for i := 0; i < g.n; i++ {
		nd := node{ID: id(i), Kind: "infrastructure", Plugin: "noop"}
		if execTrue {
			nd.Plugin = "exec"
			nd.With = map[string]any{"restore": []string{"true"}}
		}
		for _, d := range g.deps[i] {
			nd.DependsOn = append(nd.DependsOn, id(d))
		}
		doc.Nodes = append(doc.Nodes, nd)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
