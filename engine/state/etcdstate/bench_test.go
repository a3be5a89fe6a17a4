package etcdstate_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// BenchmarkRun10kBboltVsEtcd runs the same 10,000-node graph (independent
// noop nodes, parallelism 8 as `bench/`) through the engine on a durable
// bbolt file and on the package's 3-member etcd cluster, alternately, three
// rounds each per iteration, and reports both medians, their ratio, the
// bytes per node stored in etcd (keys and values under the prefix) and the
// keys per node, and the transactions the etcd run took (one per batch of
// the engine since the writes of a batch are nested, CreateRun's few).
// Steps are the engine's in-process FakeHost (no plugin processes), so that
// the ratio is the state backend's: a plugin process costs the same on
// both. The coordinator runs every step (no agents).
func BenchmarkRun10kBboltVsEtcd(b *testing.B) {
	const nodes, rounds = 10000, 3
	g := enginetest.MustGraph(b, b.TempDir(), enginetest.ChainGraph(nodes, false))
	run := func(st state.Backend) time.Duration {
		eng := engine.New(st, &enginetest.FakeHost{}, engine.Options{Parallelism: 8})
		defer eng.Close()
		start := time.Now()
		res, err := eng.Start(context.Background(), g)
		d := time.Since(start)
		if err != nil || res.Status != state.RunSucceeded {
			b.Fatalf("run: %v %v", res.Status, err)
		}
		return d
	}
	var perNode, keysPerNode float64
	var stats state.Stats
	for i := 0; i < b.N; i++ {
		var bolt, etcd, status []time.Duration
		for r := 0; r < rounds; r++ {
			fst, err := state.Open(filepath.Join(b.TempDir(), "reprise.db"), state.Options{Holder: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			bolt = append(bolt, run(fst))
			fst.Close()

			u := mustURL(b, shared)
			est, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
			if err != nil {
				b.Fatal(err)
			}
			etcd = append(etcd, run(est))
			perNode, keysPerNode = bytesPerNode(b, est, u, nodes)
			stats = est.Stats()
			est.Close()
			status = append(status, freshStatus(b, u))
		}
		mb, me := median(bolt), median(etcd)
		b.ReportMetric(mb.Seconds(), "bbolt-s")
		b.ReportMetric(me.Seconds(), "etcd-s")
		b.ReportMetric(me.Seconds()/mb.Seconds(), "etcd/bbolt")
		b.ReportMetric(perNode, "etcd-B/node")
		b.ReportMetric(keysPerNode, "etcd-keys/node")
		b.ReportMetric(median(status).Seconds(), "etcd-status-s")
		b.ReportMetric(float64(stats.Commits), "etcd-txns/run")
		b.Logf("10,000 nodes: bbolt %v, etcd %v (medians of %d), ratio %.2f, %.0f B/node in etcd; etcd transactions %d for %d changes in %d applies; status from a fresh client %v",
			bolt, etcd, rounds, me.Seconds()/mb.Seconds(), perNode, stats.Commits, stats.Changes, stats.Applies, status)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// bytesPerNode returns the bytes (keys and values) and the keys stored
// under u's prefix, per node.
func bytesPerNode(b *testing.B, st *etcdstate.Store, u etcdconn.URL, nodes int) (float64, float64) {
	resp, err := st.Client().Get(context.Background(), u.Root(), clientv3.WithPrefix())
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, kv := range resp.Kvs {
		total += len(kv.Key) + len(kv.Value)
	}
	return float64(total) / float64(nodes), float64(len(resp.Kvs)) / float64(nodes)
}

// freshStatus times what `reprise status` does on etcd from another
// machine's point of view: a new client dials the cluster, finds the run
// and computes its view (records and graph, not the journal).
func freshStatus(b *testing.B, u etcdconn.URL) time.Duration {
	start := time.Now()
	st, err := etcdstate.Open(context.Background(), u, etcdstate.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs()
	if err != nil || len(runs) != 1 {
		b.Fatalf("runs: %v %v", runs, err)
	}
	m, err := view.Load(st, runs[0].ID, view.LoadOptions{})
	if err != nil || m == nil {
		b.Fatalf("status: %v", err)
	}
	return time.Since(start)
}
