// Command scanbench measures the ioc+entropy scan of a restore point
// against its reference on the same tree in the same run: it generates a
// tree of mixed files (2 GiB by default) in a temporary folder, then, for
// each round, times `find DIR -type f -print0 | xargs -0 -P2 sha256sum`
// (the target's reference), the same with -n 64 (so that two sha256sum
// processes really run), and reprise's scan (an ioc scanner with a hash list
// and ransom-note names, and an entropy scanner). It prints the medians and
// the ratio to the reference; the target is ≤ 1.3×. `make bench` runs it.
//
//	go run ./bench/scanbench [-size 2147483648] [-repeat 3] [-keep]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/scan"
	"github.com/reprise-si/reprise/engine/scan/scantest"
)

func main() {
	size := flag.Int64("size", 2<<30, "bytes of the generated tree")
	repeat := flag.Int("repeat", 3, "rounds (the median is shown)")
	keep := flag.Bool("keep", false, "keep the generated tree")
	flag.Parse()
	if err := run(*size, *repeat, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "scanbench:", err)
		os.Exit(1)
	}
}

func run(size int64, repeat int, keep bool) error {
	work, err := os.MkdirTemp("", "reprise-scanbench-*")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	tree := filepath.Join(work, "point")
	t0 := time.Now()
	files, bytes, err := scantest.MixedTree(tree, size, 1)
	if err != nil {
		return fmt.Errorf("generate the tree: %w", err)
	}
	fmt.Printf("tree: %d files, %d bytes in %s (generated in %s)\n", files, bytes, tree, time.Since(t0).Round(time.Second))
	list := filepath.Join(work, "iocs.txt")
	if err := os.WriteFile(list, []byte(strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		return err
	}
	set, err := scan.Compile(context.Background(), []scan.Spec{
		{Name: "ioc", Type: scan.TypeIOC, HashLists: []string{list}, Names: []string{"*README*DECRYPT*"}},
		{Name: "entropy", Type: scan.TypeEntropy},
	}, scan.Options{})
	if err != nil {
		return err
	}
	shell := func(cmd string) func() error {
		return func() error {
			out, err := exec.Command("sh", "-c", cmd, "sh", tree).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %w: %s", cmd, err, out)
			}
			return nil
		}
	}
	type m struct {
		name string
		fn   func() error
		runs []time.Duration
	}
	ms := []*m{
		{name: "find | xargs -0 -P2 sha256sum", fn: shell(`find "$1" -type f -print0 | xargs -0 -P2 sha256sum >/dev/null`)},
		{name: "find | xargs -0 -P2 -n 64 sha256sum", fn: shell(`find "$1" -type f -print0 | xargs -0 -P2 -n 64 sha256sum >/dev/null`)},
		{name: "reprise scan ioc+entropy", fn: func() error {
			r, err := set.Scan(context.Background(), tree)
			if err == nil && r.Files != int64(files) {
				err = fmt.Errorf("scanned %d files, want %d", r.Files, files)
			}
			return err
		}},
	}
	// A first read puts the tree in the page cache for everyone.
	if err := ms[0].fn(); err != nil {
		return err
	}
	for round := range repeat {
		for _, x := range ms {
			start := time.Now()
			if err := x.fn(); err != nil {
				return err
			}
			x.runs = append(x.runs, time.Since(start))
		}
		fmt.Printf("round %d: %s\n", round+1, formatRuns(ms[0].runs[round], ms[1].runs[round], ms[2].runs[round]))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\n%d CPUs (GOMAXPROCS %d), load average: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), strings.TrimSpace(string(load)))
	ref := median(ms[0].runs)
	for _, x := range ms {
		med := median(x.runs)
		fmt.Printf("%-38s median %7.2fs  %6.0f MB/s  %.2f× the reference\n", x.name, med.Seconds(), float64(bytes)/med.Seconds()/1e6, med.Seconds()/ref.Seconds())
	}
	ratio := median(ms[2].runs).Seconds() / ref.Seconds()
	met := "met"
	if ratio > 1.3 {
		met = "NOT met"
	}
	fmt.Printf("target: reprise scan ≤ 1.3× find | xargs -0 -P2 sha256sum: %.2f× (%s)\n", ratio, met)
	return nil
}

func formatRuns(ds ...time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2fs", d.Seconds())
	}
	return strings.Join(s, " / ")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[len(s)/2]
}
