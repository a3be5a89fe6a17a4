package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// BenchmarkSchedulerDurable runs 2,000 independent nodes through an
// in-memory host with a durable state file: the scheduler's and the
// store's share of a run, without plugin processes.
func BenchmarkSchedulerDurable(b *testing.B) { benchScheduler(b, false) }

// BenchmarkSchedulerNoSync is the same without fsync: the CPU cost of the
// scheduler and the store per node.
func BenchmarkSchedulerNoSync(b *testing.B) { benchScheduler(b, true) }

func benchScheduler(b *testing.B, noSync bool) {
	const n = 2000
	var src strings.Builder
	src.WriteString("version: 1\nname: bench\nnodes:\n")
	for k := 0; k < n; k++ {
		fmt.Fprintf(&src, "  - {id: n%05d, kind: infrastructure, plugin: noop}\n", k)
	}
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		g := enginetest.MustGraph(b, dir, src.String())
		st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{NoSync: noSync})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := engine.New(st, &enginetest.FakeHost{}, engine.Options{}).Start(context.Background(), g)
		b.StopTimer()
		if err != nil || res.Status != state.RunSucceeded {
			b.Fatal(res.Status, err)
		}
		stats := st.Stats()
		b.ReportMetric(float64(stats.Commits)/n, "commits/node")
		st.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/node")
}
