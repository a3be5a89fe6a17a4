package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// BenchmarkStatus10kEtcd measures issue 15's "status of a 10,000-node run
// over etcd from another machine's point of view": `reprise status RUN
// --json` as a new process each time (a fresh client: dial, read the run,
// its records and its graph, print), against a real 3-member cluster. The
// same run copied into a state file is read the same way in the same
// rounds, alternately, for the ratio. Reports medians of 5 per iteration.
func BenchmarkStatus10kEtcd(b *testing.B) {
	const nodes, rounds = 10000, 5
	ctx := context.Background()
	c := etcdtest.Start(b, 3)
	dir := b.TempDir()
	u, err := etcdconn.Parse(c.URL("bench-status"))
	if err != nil {
		b.Fatal(err)
	}
	g := enginetest.MustGraph(b, dir, enginetest.ChainGraph(nodes, false))
	est, err := etcdstate.Open(ctx, u, etcdstate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.New(est, &enginetest.FakeHost{}, engine.Options{Parallelism: 8})
	res, err := eng.Start(ctx, g)
	eng.Close()
	if err != nil || res.Status != state.RunSucceeded {
		b.Fatalf("run: %v %v", res.Status, err)
	}
	cp, err := est.ExportRun(res.RunID)
	if err != nil {
		b.Fatal(err)
	}
	est.Close()
	file := filepath.Join(dir, "reprise.db")
	fst, err := state.Open(file, state.Options{Holder: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := fst.ImportRun(ctx, cp); err != nil {
		b.Fatal(err)
	}
	fst.Close()

	status := func(stateArg string) time.Duration {
		cmd := exec.Command(os.Args[0], "status", res.RunID, "--json", "--state", stateArg)
		cmd.Env = append(os.Environ(), envCLI+"=1")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("status --state %s: %v\n%.2000s", stateArg, err, out)
		}
		return d
	}
	for i := 0; i < b.N; i++ {
		var onEtcd, onFile []time.Duration
		for r := 0; r < rounds; r++ {
			onEtcd = append(onEtcd, status(u.String()))
			onFile = append(onFile, status(file))
		}
		slices.Sort(onEtcd)
		slices.Sort(onFile)
		me, mf := onEtcd[rounds/2], onFile[rounds/2]
		b.ReportMetric(me.Seconds(), "etcd-status-s")
		b.ReportMetric(mf.Seconds(), "file-status-s")
		b.ReportMetric(me.Seconds()/mf.Seconds(), "etcd/file")
		b.Logf("status of a %d-node run as a new process: etcd %v, state file %v (medians of %d), ratio %.2f",
			nodes, me, mf, rounds, me.Seconds()/mf.Seconds())
	}
}
