package etcdstate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// zonedGraph is the YAML of internal/cluster's BenchmarkDispatch10k: n
// noop nodes in zone core, in 100 chains (about 83 bytes a node, 815 KB
// for 10,000).
func zonedGraph(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nname: noop10k\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range n {
		if i < 100 {
			fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core}\n", i)
			continue
		}
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core, depends_on: [n%d]}\n", i, i-100)
	}
	return []byte(b.String())
}

// BenchmarkCreateRun10k times CreateRun of a 10,000-node run (every node
// plain pending, as the engine creates them) with the snapshot of the
// 815 KB YAML graph of BenchmarkDispatch10k, on the package's 3-member
// cluster: the median of seven creations per iteration, each under a
// fresh prefix, and the bytes stored per run (keys and values), of which
// the snapshot's chunks.
func BenchmarkCreateRun10k(b *testing.B) {
	const nodes, rounds = 10000, 7
	snapshot := zonedGraph(nodes)
	recs := make([]state.NodeRecord, nodes)
	for i := range recs {
		recs[i] = state.NodeRecord{ID: fmt.Sprintf("n%d", i), State: state.NodePending}
	}
	ctx := context.Background()
	var total, snapBytes int
	for i := 0; i < b.N; i++ {
		var ds []time.Duration
		for r := 0; r < rounds; r++ {
			u := mustURL(b, shared)
			st, err := etcdstate.Open(ctx, u, etcdstate.Options{})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			err = st.CreateRun(ctx, state.Run{ID: "r1", Created: t0}, snapshot, recs)
			ds = append(ds, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			resp, err := st.Client().Get(ctx, u.Root(), clientv3.WithPrefix())
			if err != nil {
				b.Fatal(err)
			}
			total, snapBytes = 0, 0
			for _, kv := range resp.Kvs {
				total += len(kv.Key) + len(kv.Value)
				if strings.Contains(string(kv.Key), "/runs/snap/") {
					snapBytes += len(kv.Value)
				}
			}
			st.Close()
		}
		b.ReportMetric(float64(median(ds).Microseconds())/1000, "create-ms")
		b.ReportMetric(float64(total), "B/run")
		b.ReportMetric(float64(snapBytes), "snap-B/run")
		b.Logf("CreateRun of %d nodes, snapshot %d bytes: %v (median %v); %d bytes stored, %d in the snapshot's chunks", nodes, len(snapshot), ds, median(ds), total, snapBytes)
	}
}
