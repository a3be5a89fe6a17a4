package etcdstate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// The conformance suite runs the same inputs against the bbolt file and
// etcd and wants the same results, down to the journal's hashes.

var snap = []byte("version: 1\nname: conf\nnodes: [...]\n")

func createRun(t *testing.T, st state.Backend, id string, n int) {
	t.Helper()
	var nodes []state.NodeRecord
	for i := 0; i < n; i++ {
		nodes = append(nodes, state.NodeRecord{ID: fmt.Sprintf("n%03d", i), State: state.NodePending})
	}
	nodes = append(nodes, state.NodeRecord{ID: "skipped", State: state.NodeSkipped})
	run := state.Run{ID: id, GraphName: "conf", GraphFile: "conf.yaml", Created: t0}
	if err := st.CreateRun(context.Background(), run, snap, nodes); err != nil {
		t.Fatalf("%s: CreateRun: %v", st.Path(), err)
	}
}

// script applies the changes a run of nodes n000…n00k makes, with fixed
// times: started, succeeded (with outputs), a run record update.
func script(t *testing.T, st state.Backend, id string, k int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < k; i++ {
		nid := fmt.Sprintf("n%03d", i)
		at := t0.Add(time.Duration(i+1) * time.Second)
		rec := state.NodeRecord{ID: nid, State: state.NodeRunning, Attempts: 1, Started: at}
		if err := st.Apply(ctx, state.Change{RunID: id, Node: &rec,
			Entry: &state.Entry{Time: at, Type: state.EntryStarted, NodeID: nid, State: state.NodeRunning, Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
		rec.State, rec.Ended, rec.Outputs = state.NodeSucceeded, at.Add(time.Millisecond), map[string]string{"ip": "10.0.0.1"}
		if err := st.Apply(ctx, state.Change{RunID: id, Node: &rec,
			Entry: &state.Entry{Time: rec.Ended, Type: state.EntrySucceeded, NodeID: nid, State: state.NodeSucceeded, Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	run, err := st.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	run.Status, run.Updated = state.RunParked, t0.Add(time.Hour)
	if err := st.Apply(ctx, state.Change{RunID: id, Run: &run,
		Entry: &state.Entry{Time: run.Updated, Type: state.EntryRunParked, Message: "parked"}}); err != nil {
		t.Fatal(err)
	}
}

func journalOf(t *testing.T, st state.Backend, id string) []state.Entry {
	t.Helper()
	var out []state.Entry
	if err := st.Journal(id, 0, func(e state.Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("%s: Journal: %v", st.Path(), err)
	}
	return out
}

func TestConformanceSameResults(t *testing.T) {
	bs := backends(t)
	type result struct {
		run     state.Run
		runs    int
		nodes   []state.NodeRecord
		node    state.NodeRecord
		snap    []byte
		journal []state.Entry
		seq     uint64
		hash    string
		verify  state.VerifyReport
	}
	got := map[string]result{}
	for name, st := range bs {
		createRun(t, st, "r1", 5)
		script(t, st, "r1", 3)
		var r result
		var err error
		if r.run, err = st.Run("r1"); err != nil {
			t.Fatal(err)
		}
		runs, err := st.Runs()
		if err != nil {
			t.Fatal(err)
		}
		r.runs = len(runs)
		if r.nodes, err = st.Nodes("r1"); err != nil {
			t.Fatal(err)
		}
		if r.node, err = st.Node("r1", "n001"); err != nil {
			t.Fatal(err)
		}
		if r.snap, err = st.Snapshot("r1"); err != nil {
			t.Fatal(err)
		}
		r.journal = journalOf(t, st, "r1")
		if r.seq, r.hash, err = st.Head("r1"); err != nil {
			t.Fatal(err)
		}
		if r.verify, err = st.Verify("r1"); err != nil {
			t.Fatal(err)
		}
		if !r.verify.OK {
			t.Fatalf("%s: Verify: %+v", name, r.verify)
		}
		got[name] = r
		// Errors.
		if _, err := st.Run("nope"); !errors.Is(err, state.ErrRunNotFound) {
			t.Errorf("%s: Run(nope) = %v, want ErrRunNotFound", name, err)
		}
		if _, err := st.Node("r1", "nope"); !errors.Is(err, state.ErrNodeNotFound) {
			t.Errorf("%s: Node(nope) = %v, want ErrNodeNotFound", name, err)
		}
		if err := st.CreateRun(context.Background(), state.Run{ID: "r1"}, snap, nil); !errors.Is(err, state.ErrRunExists) {
			t.Errorf("%s: CreateRun again = %v, want ErrRunExists", name, err)
		}
		if err := st.Apply(context.Background(), state.Change{RunID: "nope", Entry: &state.Entry{Type: state.EntryRunStarted}}); !errors.Is(err, state.ErrRunNotFound) {
			t.Errorf("%s: Apply to unknown run = %v, want ErrRunNotFound", name, err)
		}
		if _, err := st.LatestUnfinished(); err != nil {
			t.Errorf("%s: LatestUnfinished: %v", name, err)
		}
	}
	a, b := got["bbolt"], got["etcd"]
	if !reflect.DeepEqual(a.run, b.run) {
		t.Errorf("Run differs:\nbbolt %+v\netcd  %+v", a.run, b.run)
	}
	if !reflect.DeepEqual(a.nodes, b.nodes) || !reflect.DeepEqual(a.node, b.node) {
		t.Errorf("Nodes differ:\nbbolt %+v\netcd  %+v", a.nodes, b.nodes)
	}
	if string(a.snap) != string(b.snap) || a.runs != b.runs {
		t.Errorf("snapshot or runs differ")
	}
	if len(a.journal) != len(b.journal) || len(a.journal) != 8 {
		t.Fatalf("journal lengths: bbolt %d, etcd %d, want 8", len(a.journal), len(b.journal))
	}
	for i := range a.journal {
		if !reflect.DeepEqual(a.journal[i], b.journal[i]) {
			t.Errorf("entry %d differs:\nbbolt %+v\netcd  %+v", i+1, a.journal[i], b.journal[i])
		}
	}
	if a.seq != b.seq || a.hash != b.hash || a.seq != 8 {
		t.Errorf("heads: bbolt %d %s, etcd %d %s", a.seq, a.hash, b.seq, b.hash)
	}
	if a.verify != b.verify {
		t.Errorf("Verify: bbolt %+v, etcd %+v", a.verify, b.verify)
	}
}

// TestConformanceStoreEntries: a change without an entry of its own gets
// the store's (node-updated, node-removed, snapshot-replaced), on both.
func TestConformanceStoreEntries(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			createRun(t, st, "r1", 3)
			ctx := context.Background()
			rec := state.NodeRecord{ID: "n000", State: state.NodeSucceeded}
			newSnap := []byte("version: 1\nname: conf2\n")
			err := st.Apply(ctx,
				state.Change{RunID: "r1", Node: &rec},
				state.Change{RunID: "r1", RemoveNode: "n002"},
				state.Change{RunID: "r1", Snapshot: newSnap},
				state.Change{RunID: "r1", RemoveNode: "n001", Node: &state.NodeRecord{ID: "n001", State: state.NodePending}})
			if err != nil {
				t.Fatal(err)
			}
			var types []state.EntryType
			for _, e := range journalOf(t, st, "r1") {
				types = append(types, e.Type)
			}
			want := []state.EntryType{state.EntryRunCreated, state.EntryNodeUpdated, state.EntryNodeRemoved,
				state.EntrySnapshotReplaced, state.EntryNodeRemoved, state.EntryNodeUpdated}
			if !reflect.DeepEqual(types, want) {
				t.Errorf("journal %v, want %v", types, want)
			}
			nodes, _ := st.Nodes("r1")
			if len(nodes) != 3 { // n000, n001 (put back), skipped
				t.Errorf("nodes %+v, want 3", nodes)
			}
			got, err := st.Snapshot("r1")
			if err != nil || string(got) != string(newSnap) {
				t.Errorf("Snapshot = %q, %v", got, err)
			}
			run, _ := st.Run("r1")
			if run.GraphHash != state.GraphHash(newSnap) {
				t.Errorf("GraphHash %s, want the new snapshot's", run.GraphHash)
			}
			if rep, err := st.Verify("r1"); err != nil || !rep.OK {
				t.Errorf("Verify = %+v, %v", rep, err)
			}
		})
	}
}

// TestConformanceGroupCommit: concurrent Apply calls all land, in one
// unbroken chain, in fewer commits than calls.
func TestConformanceGroupCommit(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			const n = 60
			createRun(t, st, "r1", n)
			before := st.Stats()
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nid := fmt.Sprintf("n%03d", i)
					errs <- st.Apply(context.Background(), state.Change{RunID: "r1",
						Node:  &state.NodeRecord{ID: nid, State: state.NodeRunning, Attempts: 1},
						Entry: &state.Entry{Type: state.EntryStarted, NodeID: nid, State: state.NodeRunning}})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			s := st.Stats()
			if s.Applies-before.Applies != n || s.Commits-before.Commits >= n {
				t.Errorf("stats %+v (before %+v): want %d applies in fewer commits", s, before, n)
			}
			j := journalOf(t, st, "r1")
			if len(j) != n+1 {
				t.Fatalf("%d entries, want %d", len(j), n+1)
			}
			for i, e := range j {
				if e.Seq != uint64(i+1) || (i > 0 && e.Prev != j[i-1].Hash) {
					t.Fatalf("entry %d: seq %d prev %.8s", i+1, e.Seq, e.Prev)
				}
			}
			if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Records != n+1 {
				t.Errorf("Verify = %+v, %v", rep, err)
			}
		})
	}
}

func TestConformanceOperators(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ops := []state.Operator{
				{Name: "bob", Role: "viewer", TokenID: "b1", Hash: "h1", Created: t0},
				{Name: "alice", Role: "admin", TokenID: "a1", Hash: "h2", Created: t0, CreatedBy: "root"},
			}
			for _, op := range ops {
				if err := st.PutOperator(op); err != nil {
					t.Fatal(err)
				}
			}
			ops[0].Role = "approver"
			if err := st.PutOperator(ops[0]); err != nil {
				t.Fatal(err)
			}
			got, err := st.Operators()
			if err != nil {
				t.Fatal(err)
			}
			want := []state.Operator{ops[1], ops[0]}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Operators = %+v, want %+v", got, want)
			}
			if err := st.DeleteOperator("bob"); err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteOperator("bob"); !errors.Is(err, state.ErrOperatorNotFound) {
				t.Errorf("delete twice: %v, want ErrOperatorNotFound", err)
			}
			if got, _ := st.Operators(); len(got) != 1 || got[0].Name != "alice" {
				t.Errorf("after delete: %+v", got)
			}
		})
	}
}

// TestConformanceInvalid: what either backend refuses before writing.
func TestConformanceInvalid(t *testing.T) {
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			createRun(t, st, "r1", 1)
			ctx := context.Background()
			for _, c := range []state.Change{
				{RunID: ""},
				{RunID: "r1", Run: &state.Run{ID: "other"}},
				{RunID: "r1", Entry: &state.Entry{}},
				{RunID: "r1", Node: &state.NodeRecord{}},
			} {
				if err := st.Apply(ctx, c); !errors.Is(err, state.ErrInvalidChange) {
					t.Errorf("Apply(%+v) = %v, want ErrInvalidChange", c, err)
				}
			}
			if err := st.CreateRun(ctx, state.Run{ID: "r2", GraphHash: "00"}, snap, nil); !errors.Is(err, state.ErrInvalidChange) {
				t.Errorf("CreateRun with a wrong hash = %v, want ErrInvalidChange", err)
			}
		})
	}
}
