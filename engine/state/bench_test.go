package state

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkApply measures durable Apply throughput with W concurrent
// writers, one change (a node record and its journal entry) per Apply.
// ns/op is per change; commits/change shows the group commit at work.
func BenchmarkApply(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := mustOpen(b, Options{})
			mustRun(b, s, "r1", 0)
			ctx := context.Background()
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprintf("n%07d", i)
						err := s.Apply(ctx, Change{RunID: "r1",
							Node:  &NodeRecord{ID: id, State: NodeSucceeded, Attempts: 1, Started: time.Now(), Ended: time.Now()},
							Entry: &Entry{Type: "node-succeeded", NodeID: id, State: NodeSucceeded, Attempt: 1}})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(st.Commits)/float64(st.Changes), "commits/change")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
		})
	}
}

// BenchmarkRunSize simulates a full durable run of 10,000 nodes with 8
// workers: CreateRun, then per node "node-started", "node-restored" (with
// outputs) and "node-succeeded", each a node record and a journal entry,
// then "run-finished". It reports the state file's size per node.
func BenchmarkRunSize(b *testing.B) {
	const nodes, workers = 10000, 8
	for range b.N {
		path := filepath.Join(b.TempDir(), "reprise.db")
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		recs := make([]NodeRecord, nodes)
		for i := range recs {
			recs[i] = NodeRecord{ID: fmt.Sprintf("app-%05d", i), State: NodePending}
		}
		snapshot := make([]byte, 150*nodes) // a graph file of ~150 bytes a node
		run := Run{ID: NewRunID(time.Now()), GraphName: "bench", GraphFile: "graph.yaml", Status: RunRunning,
			Options: RunOptions{Parallelism: workers}}
		if err := s.CreateRun(ctx, run, snapshot, recs); err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= nodes {
						return
					}
					if err := simulateNode(ctx, s, run.ID, recs[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		run.Status, run.Finished = RunSucceeded, time.Now()
		if err := s.Apply(ctx, Change{RunID: run.ID, Run: &run, Entry: &Entry{Type: "run-finished", Message: "10000 nodes succeeded"}}); err != nil {
			b.Fatal(err)
		}
		st := s.Stats()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(info.Size())/nodes, "file-bytes/node")
		b.ReportMetric(float64(usedBytes(b, path))/nodes, "used-bytes/node")
		b.ReportMetric(float64(st.Commits)/float64(st.Changes), "commits/change")
	}
}

// simulateNode records one node's life: started, restored, succeeded.
func simulateNode(ctx context.Context, s *Store, runID string, n NodeRecord) error {
	start := time.Now()
	n.State, n.Attempts, n.Started = NodeRunning, 1, start
	if err := s.Apply(ctx, Change{RunID: runID, Node: &n,
		Entry: &Entry{Type: "node-started", NodeID: n.ID, State: NodeRunning, Attempt: 1}}); err != nil {
		return err
	}
	n.Outputs = map[string]string{"host": n.ID + ".chsf.local"}
	if err := s.Apply(ctx, Change{RunID: runID, Node: &n,
		Entry: &Entry{Type: "node-restored", NodeID: n.ID, Attempt: 1, Message: "restore step finished"}}); err != nil {
		return err
	}
	end := time.Now()
	n.State, n.Ended = NodeSucceeded, end
	n.History = []Attempt{{N: 1, Started: start, Ended: end, Result: NodeSucceeded}}
	return s.Apply(ctx, Change{RunID: runID, Node: &n,
		Entry: &Entry{Type: "node-succeeded", NodeID: n.ID, State: NodeSucceeded, Attempt: 1}})
}

// usedBytes returns the bytes below the high water mark of the newest meta
// page (bbolt grows the file ahead of use).
func usedBytes(tb testing.TB, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	ps := int(binary.LittleEndian.Uint32(b[16+8:]))
	m0, m1 := b[16:], b[ps+16:]
	m := m0
	if binary.LittleEndian.Uint64(m1[48:]) > binary.LittleEndian.Uint64(m0[48:]) {
		m = m1
	}
	return int64(ps) * int64(binary.LittleEndian.Uint64(m[40:]))
}

// BenchmarkBaseline measures what the group commit replaces, in the same
// run: one bbolt Update per change (a node record and a journal entry),
// and bbolt's own Batch with 8 writers. ns/op is per change.
func BenchmarkBaseline(b *testing.B) {
	b.Run("update-per-change", func(b *testing.B) {
		s := mustOpen(b, Options{})
		mustRun(b, s, "r1", 0)
		for i := range b.N {
			id := fmt.Sprintf("n%07d", i)
			err := s.db.Update(func(tx *bolt.Tx) error {
				w := newTxWriter(tx, s.path)
				node, _ := encodeNode(&NodeRecord{ID: id, State: NodeSucceeded, Attempts: 1, Started: time.Now(), Ended: time.Now()})
				if err := w.apply(&encodedChange{runID: "r1", nodeID: id, node: node,
					entry: &Entry{Type: "node-succeeded", NodeID: id, State: NodeSucceeded, Attempt: 1}}); err != nil {
					return err
				}
				return w.flush()
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
	})
	b.Run("bolt-batch-8-writers", func(b *testing.B) {
		s := mustOpen(b, Options{})
		mustRun(b, s, "r1", 0)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(b.N) {
						return
					}
					id := fmt.Sprintf("n%07d", i)
					node, _ := encodeNode(&NodeRecord{ID: id, State: NodeSucceeded, Attempts: 1, Started: time.Now(), Ended: time.Now()})
					err := s.db.Batch(func(tx *bolt.Tx) error {
						w := newTxWriter(tx, s.path)
						if err := w.apply(&encodedChange{runID: "r1", nodeID: id, node: node,
							entry: &Entry{Type: "node-succeeded", NodeID: id, State: NodeSucceeded, Attempt: 1}}); err != nil {
							return err
						}
						return w.flush()
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
	})
}

// BenchmarkResumeRead measures what resume reads from a finished run of N
// nodes: Open (read-only), the run, its snapshot and every node record.
func BenchmarkResumeRead(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "reprise.db")
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			recs := make([]NodeRecord, n)
			t0 := time.Now()
			for i := range recs {
				recs[i] = NodeRecord{ID: fmt.Sprintf("app-%06d", i), State: NodeSucceeded, Attempts: 1,
					History: []Attempt{{N: 1, Started: t0, Ended: t0, Result: NodeSucceeded}}, Started: t0, Ended: t0,
					Outputs: map[string]string{"host": fmt.Sprintf("app-%06d.chsf.local", i)}}
			}
			if err := s.CreateRun(context.Background(), Run{ID: "r1"}, make([]byte, 150*n), recs); err != nil {
				b.Fatal(err)
			}
			s.Close()
			b.ResetTimer()
			for range b.N {
				s, err := Open(path, Options{ReadOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Run("r1"); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Snapshot("r1"); err != nil {
					b.Fatal(err)
				}
				nodes, err := s.Nodes("r1")
				if err != nil || len(nodes) != n {
					b.Fatal(len(nodes), err)
				}
				s.Close()
			}
		})
	}
}
