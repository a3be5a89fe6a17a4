package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// mustOpen opens a fresh store in a temporary directory.
func mustOpen(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "reprise.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// mustRun creates a run with n pending nodes n0000, n0001, ….
func mustRun(t testing.TB, s *Store, id string, n int) Run {
	t.Helper()
	nodes := make([]NodeRecord, n)
	for i := range nodes {
		nodes[i] = NodeRecord{ID: fmt.Sprintf("n%04d", i), State: NodePending}
	}
	run := Run{ID: id, GraphName: "test", GraphFile: "graph.yaml", Status: RunRunning,
		Options: RunOptions{Parallelism: 8, Targets: []string{"n0001"}}}
	if err := s.CreateRun(context.Background(), run, []byte("version: 1\n"), nodes); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(path, Options{Holder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	run := mustRun(t, s, "r1", 3)
	if run.Total != 3 || run.GraphHash == "" || run.Created.IsZero() || run.Status != RunRunning {
		t.Fatalf("run after create = %+v", run)
	}
	t0 := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	hist := make([]Attempt, 25)
	for i := range hist {
		hist[i] = Attempt{N: i + 1, Started: t0, Ended: t0.Add(time.Second), Result: NodeFailed, Error: "boom"}
	}
	node := NodeRecord{ID: "n0001", State: NodeSucceeded, Attempts: 25, History: hist, Started: t0, Ended: t0.Add(time.Minute),
		LastError: "boom", Outputs: map[string]string{"host": "db1"}, ApprovedBy: "alice", ApprovalComment: "ok",
		ApprovedAt: t0, MarkedBy: "bob", MarkReason: "done by hand"}
	run.Status = RunSucceeded
	run.Finished = t0
	err = s.Apply(ctx,
		Change{RunID: "r1", Node: &node, Entry: &Entry{Type: "node-succeeded", NodeID: "n0001", State: NodeSucceeded, Attempt: 25,
			Message: "restored", By: "engine", Data: map[string]string{"k": "v"}}},
		Change{RunID: "r1", RemoveNode: "n0002", Snapshot: []byte("version: 1\n# edited\n"), Entry: &Entry{Type: "graph-changed"}},
		Change{RunID: "r1", Run: &run, Entry: &Entry{Type: "run-finished"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".holder"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("holder file after Close: %v, want it removed", err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}

	s, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gotRun, err := s.Run("r1")
	run.GraphHash = sha256Hex([]byte("version: 1\n# edited\n")) // the store keeps it in step with the snapshot
	if err != nil || !reflect.DeepEqual(gotRun, run) {
		t.Errorf("Run = %+v, %v; want %+v", gotRun, err, run)
	}
	got, err := s.Node("r1", "n0001")
	want := node
	want.History = hist[5:]
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Node = %+v, %v\nwant %+v", got, err, want)
	}
	nodes, err := s.Nodes("r1")
	if err != nil || len(nodes) != 2 || nodes[0].ID != "n0000" || nodes[1].ID != "n0001" {
		t.Errorf("Nodes = %+v, %v; want n0000, n0001", nodes, err)
	}
	if _, err := s.Node("r1", "n0002"); !errors.Is(err, ErrNodeNotFound) {
		t.Errorf("removed node: err = %v, want ErrNodeNotFound", err)
	}
	snap, err := s.Snapshot("r1")
	if err != nil || string(snap) != "version: 1\n# edited\n" {
		t.Errorf("Snapshot = %q, %v", snap, err)
	}
	var types []string
	var prev string
	err = s.Journal("r1", 0, func(e Entry) error {
		types = append(types, string(e.Type))
		if e.Seq != uint64(len(types)) || e.Prev != prev || len(e.Hash) != 64 || e.Time.IsZero() {
			t.Errorf("entry %+v: bad seq, chain or time", e)
		}
		prev = e.Hash
		return nil
	})
	if wantTypes := []string{"run-created", "node-succeeded", "node-removed", "graph-changed", "run-finished"}; err != nil || !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("journal types = %v, %v; want %v", types, err, wantTypes)
	}
	var after []uint64
	_ = s.Journal("r1", 2, func(e Entry) error { after = append(after, e.Seq); return nil })
	if !reflect.DeepEqual(after, []uint64{3, 4, 5}) {
		t.Errorf("Journal after 2 = %v, want [3 4 5]", after)
	}
	rep, err := s.Verify("r1")
	if err != nil || !rep.OK || rep.Entries != 5 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
	if err := s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{Type: "x"}}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Apply on read-only store: %v, want ErrReadOnly", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Options{NoSync: true})
	mustRun(t, s, "r1", 1)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unknown run", s.Apply(ctx, Change{RunID: "nope", Entry: &Entry{Type: "x"}}), ErrRunNotFound},
		{"empty run id", s.Apply(ctx, Change{Entry: &Entry{Type: "x"}}), ErrInvalidChange},
		{"run id mismatch", s.Apply(ctx, Change{RunID: "r1", Run: &Run{ID: "r2"}}), ErrInvalidChange},
		{"empty node id", s.Apply(ctx, Change{RunID: "r1", Node: &NodeRecord{}}), ErrInvalidChange},
		{"empty entry type", s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{}}), ErrInvalidChange},
		{"run exists", s.CreateRun(ctx, Run{ID: "r1"}, nil, nil), ErrRunExists},
		{"duplicate node", s.CreateRun(ctx, Run{ID: "r2"}, nil, []NodeRecord{{ID: "a"}, {ID: "a"}}), ErrInvalidChange},
		{"Run unknown", second(s.Run("nope")), ErrRunNotFound},
		{"Nodes unknown", second(s.Nodes("nope")), ErrRunNotFound},
		{"Node unknown run", second(s.Node("nope", "n0000")), ErrRunNotFound},
		{"Node unknown", second(s.Node("r1", "nope")), ErrNodeNotFound},
		{"Snapshot unknown", second(s.Snapshot("nope")), ErrRunNotFound},
		{"Verify unknown", second(s.Verify("nope")), ErrRunNotFound},
		{"Journal unknown", s.Journal("nope", 0, func(Entry) error { return nil }), ErrRunNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Errorf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
	// A request that fails alone does not fail the others, and leaves no trace.
	rep, err := s.Verify("r1")
	if err != nil || !rep.OK || rep.Entries != 1 {
		t.Errorf("Verify after refused changes = %+v, %v; want 1 entry, OK", rep, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Apply(cctx, Change{RunID: "r1", Entry: &Entry{Type: "x"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with canceled ctx = %v", err)
	}
	s.Close()
	if err := s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{Type: "x"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Run("r1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestRunsAndLatestUnfinished(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Options{NoSync: true})
	if _, err := s.LatestUnfinished(); !errors.Is(err, ErrNoRun) {
		t.Errorf("LatestUnfinished on empty store = %v, want ErrNoRun", err)
	}
	t0 := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	for i, st := range []RunStatus{RunFailed, RunParked, RunSucceeded} {
		id := NewRunID(t0.Add(time.Duration(i) * time.Minute))
		if err := s.CreateRun(ctx, Run{ID: id, Status: st, Created: t0.Add(time.Duration(i) * time.Minute)}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.Runs()
	if err != nil || len(runs) != 3 {
		t.Fatalf("Runs = %v, %v", runs, err)
	}
	if runs[0].Status != RunSucceeded || runs[2].Status != RunFailed {
		t.Errorf("Runs not newest first: %+v", runs)
	}
	latest, err := s.LatestUnfinished()
	if err != nil || latest.Status != RunParked {
		t.Errorf("LatestUnfinished = %+v, %v; want the parked run", latest, err)
	}
}

func TestNewRunID(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 20, 35, 12, 0, time.UTC)
	a, b := NewRunID(t0), NewRunID(t0.Add(time.Second))
	if len(a) != len("20261128-203512-3fa9") || a[:16] != "20261128-203512-" || a >= b {
		t.Errorf("NewRunID = %q, %q: want sortable 20261128-203512-xxxx", a, b)
	}
}
