package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// noopGraph is n noop nodes in zone core, in layers of 100, each node but
// the first layer's depending on one node of the layer before.
func noopGraph(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: noop10k\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range n {
		if i < 100 {
			fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core}\n", i)
			continue
		}
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core, depends_on: [n%d]}\n", i, i-100)
	}
	return b.String()
}

// BenchmarkDispatch10k runs the same 10,000-node noop graph twice per
// operation, in the same process: through the local plugin host over a
// bbolt file (the one-machine run), and through three agents on a real
// 3-member etcd cluster (the run's state still in a bbolt file). It
// reports both wall times and their ratio (target: etcd ≤ 3× bbolt).
func BenchmarkDispatch10k(b *testing.B) {
	c := etcdtest.Start(b, 3)
	n, par, slots := envInt("REPRISE_BENCH_NODES", 10000), envInt("REPRISE_BENCH_PARALLELISM", 256), envInt("REPRISE_BENCH_SLOTS", 128)
	var bolt, etcd []float64
	for i := range b.N {
		dir := b.TempDir()
		g1 := mustGraph(b, dir, noopGraph(n))
		// bbolt, local host.
		st1 := openStore(b, filepath.Join(dir, "bolt.db"))
		h := host.New(host.Options{Plugins: g1.Plugins, GraphDir: g1.Dir, BuiltinCommand: hosttest.BuiltinCommand})
		start := time.Now()
		res, err := engine.New(st1, h, engine.Options{Parallelism: par, NoProgress: true}).Start(context.Background(), g1)
		bolt = append(bolt, time.Since(start).Seconds())
		h.Close()
		st1.Close()
		if err != nil || res.Status != state.RunSucceeded {
			b.Fatalf("bbolt run: %+v %v", res, err)
		}
		// etcd, three agents.
		k := cluster.NewKeys(fmt.Sprintf("bench%d", i))
		var agents []*testAgent
		for j := range 3 {
			agents = append(agents, benchAgent(b, c, k, fmt.Sprintf("a%d", j), slots))
		}
		g2 := mustGraph(b, dir, noopGraph(n))
		st2 := openStore(b, filepath.Join(dir, "etcd-run.db"))
		d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(b), Keys: k, Graph: g2, Name: "bench",
			Journal: func(ctx context.Context, run string, e *state.Entry) error {
				return st2.Apply(ctx, state.Change{RunID: run, Entry: e})
			}})
		if len(d.Agents()) == 0 {
			b.Fatal("no agents seen")
		}
		start = time.Now()
		res, err = engine.New(st2, d, engine.Options{Parallelism: par, NoProgress: true}).Start(context.Background(), g2)
		etcd = append(etcd, time.Since(start).Seconds())
		d.Close()
		st2.Close()
		for _, a := range agents {
			a.stop()
		}
		if err != nil || res.Status != state.RunSucceeded {
			b.Fatalf("etcd run: %+v %v", res, err)
		}
	}
	mb, me := median(bolt), median(etcd)
	b.ReportMetric(mb, "bbolt-s")
	b.ReportMetric(me, "etcd-s")
	b.ReportMetric(me/mb, "ratio")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchAgent(b *testing.B, c *etcdtest.Cluster, k cluster.Keys, name string, slots int) *testAgent {
	cli := c.Client(b)
	a := cluster.NewAgent(cluster.AgentOptions{Client: cli, Keys: k, Name: name, Zone: "core", Slots: slots, TTL: 10 * time.Second,
		NewHost: localHost, Logger: zap.NewNop()})
	if err := a.Register(context.Background()); err != nil {
		b.Fatal(err)
	}
	drain, dcancel := context.WithCancel(context.Background())
	hard, hcancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, cli: cli, drain: dcancel, hard: hcancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(drain, hard) }()
	return ta
}

// BenchmarkFailover measures, five times per operation, the time from the
// leading coordinator's SIGKILL to the standby's first step (a line of
// runs.txt written by a step it started), with real `reprise run`
// processes and a lease TTL of 2 s (target: ≤ TTL + 2 s). It reports the
// median and the slowest.
func BenchmarkFailover(b *testing.B) {
	if buildErr != nil {
		b.Skipf("bin/reprise not built: %v", buildErr)
	}
	c := etcdtest.Start(b, 3)
	var took []float64
	for range b.N {
		for j := range 5 {
			took = append(took, failoverOnce(b, c, fmt.Sprintf("fo%d", j)).Seconds())
		}
	}
	b.ReportMetric(median(took), "median-s")
	b.ReportMetric(slices.Max(took), "max-s")
}

func failoverOnce(b *testing.B, c *etcdtest.Cluster, name string) time.Duration {
	dir := b.TempDir()
	graph := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(graph, []byte(failoverGraph(name)), 0o644); err != nil {
		b.Fatal(err)
	}
	url := c.URL("failover-bench")
	db := filepath.Join(dir, "reprise.db")
	leader := reprise(b, "run", "-q", "--cluster", url, "--ttl", "2s", "--state", db, graph)
	waitFor(b, 60*time.Second, "the leader's first step", func() bool {
		_, err := os.Stat(filepath.Join(dir, "runs.txt"))
		return err == nil
	})
	standby := reprise(b, "run", "-q", "--cluster", url, "--ttl", "2s", "--standby", "--state", db, graph)
	runs := filepath.Join(dir, "runs.txt")
	waitFor(b, 60*time.Second, "slow did its work, the standby waits", func() bool {
		_, err := os.Stat(filepath.Join(dir, "slow.done"))
		return err == nil && strings.Contains(standby.output(), "waiting to take over")
	})
	killed := time.Now()
	leader.cmd.Process.Signal(syscall.SIGKILL)
	waitFor(b, 60*time.Second, "the standby's first step", func() bool {
		data, _ := os.ReadFile(runs)
		return strings.Contains(string(data), "after")
	})
	took := time.Since(killed)
	<-standby.done
	<-leader.done
	return took
}

func openStore(b testing.TB, path string) *state.Store {
	st, err := state.Open(path, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// envInt reads a benchmark's size from the environment (def when unset).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
