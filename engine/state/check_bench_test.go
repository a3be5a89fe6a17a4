package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// mustBenchFile writes a closed state file holding one finished run of n
// nodes, each started, restored (with an output) and succeeded: three
// records and three journal entries a node, as a real run writes them.
func mustBenchFile(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "reprise.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	recs := make([]NodeRecord, n)
	for i := range recs {
		recs[i] = NodeRecord{ID: fmt.Sprintf("app-%06d", i), State: NodePending}
	}
	if err := s.CreateRun(ctx, Run{ID: "r1", GraphName: "bench"}, make([]byte, 150*n), recs); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var batch []Change
	for i := range recs {
		id := recs[i].ID
		for k, st := range []NodeState{NodeRunning, NodeRunning, NodeSucceeded} {
			rec := NodeRecord{ID: id, State: st, Attempts: 1, Started: t0, Ended: t0,
				History: []Attempt{{N: 1, Started: t0, Ended: t0, Result: st}}}
			if k > 0 {
				rec.Outputs = map[string]string{"host": id + ".chsf.local"}
			}
			batch = append(batch, Change{RunID: "r1", Node: &rec, Entry: &Entry{Type: EntryStarted, NodeID: id, State: st,
				Attempt: 1, Message: "restore of " + id}})
		}
		if len(batch) >= 300 || i == n-1 {
			if err := s.Apply(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return path
}

// BenchmarkCheckFile measures the check a writer's Open makes before its
// first write (checkFile: every page read, values checked, bbolt's
// Tx.Check), Verify (chain, records, snapshot) and, for scale, a read-only
// Open with nothing read. MB/s are of the file's pages in use.
func BenchmarkCheckFile(b *testing.B) {
	for _, n := range []int{2000, 10000} {
		path := mustBenchFile(b, n)
		size := usedBytes(b, path)
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("check/nodes=%d", n), func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				if err := s.checkFile(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/(float64(size)/(1<<20)), "ms/MB")
		})
		b.Run(fmt.Sprintf("verify/nodes=%d", n), func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				rep, err := s.Verify("r1")
				if err != nil || !rep.OK {
					b.Fatal(rep, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/(float64(size)/(1<<20)), "ms/MB")
		})
		s.Close()
		b.Run(fmt.Sprintf("open-readonly/nodes=%d", n), func(b *testing.B) {
			for range b.N {
				r, err := Open(path, Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}
