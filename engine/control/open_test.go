package control_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

// mustRun creates a state file in a temporary folder with one run of two
// nodes, and returns the open store and the run.
func mustRun(t *testing.T) (*state.Store, state.Run) {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	run := state.Run{ID: state.NewRunID(now), GraphName: "g", Status: state.RunRunning, Created: now}
	recs := []state.NodeRecord{{ID: "a", State: state.NodeSucceeded}, {ID: "b", State: state.NodePending}}
	if err := st.CreateRun(context.Background(), run, []byte("version: 1\n"), recs); err != nil {
		t.Fatal(err)
	}
	return st, run
}

func TestOpenNoFile(t *testing.T) {
	_, err := control.Open(filepath.Join(t.TempDir(), "none.db"))
	if !errors.Is(err, control.ErrNoStateFile) {
		t.Errorf("Open(missing) err = %v, want ErrNoStateFile", err)
	}
}

// TestOpenFile: a file no process holds is read directly (Live says no
// run), and the reader holds it read-only until Close.
func TestOpenFile(t *testing.T) {
	st, run := mustRun(t)
	path := st.Path()
	st.Close()
	r, err := control.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Live() != "" {
		t.Errorf("Live = %q reading the file, want none", r.Live())
	}
	if nodes, err := r.Nodes(run.ID); err != nil || len(nodes) != 2 {
		t.Errorf("Nodes = %v, %v", nodes, err)
	}
	if _, err := state.Open(path, state.Options{}); err == nil {
		t.Error("a writer opened the file while the reader held it")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := state.Open(path, state.Options{})
	if err != nil {
		t.Fatalf("a writer after Close: %v", err)
	}
	w.Close()
}

// TestOpenSocketThenFallback: while a process holds the file, the reader
// goes through its socket and knows its live run; when that process ends
// (socket closed, file released), the same reader reads the file, the
// journal going on after the last entry it passed.
func TestOpenSocketThenFallback(t *testing.T) {
	st, run := mustRun(t)
	srv, err := control.Listen(control.SocketPath(st.Path()), control.Backend{Store: st, Live: func() string { return run.ID }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := control.Open(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Live() != run.ID {
		t.Errorf("Live = %q, want %q (through the socket)", r.Live(), run.ID)
	}
	var seqs []uint64
	if err := r.Journal(run.ID, 0, func(e state.Entry) error { seqs = append(seqs, e.Seq); return nil }); err != nil || len(seqs) != 1 {
		t.Fatalf("Journal through the socket = %v, %v", seqs, err)
	}
	// The run goes on after the socket closes: one more entry, then the
	// process lets the file go.
	ent := &state.Entry{Time: time.Now(), Type: state.EntryStarted, NodeID: "b"}
	rec := state.NodeRecord{ID: "b", State: state.NodeRunning}
	if err := st.Apply(context.Background(), state.Change{RunID: run.ID, Node: &rec, Entry: ent}); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	st.Close()
	if err := r.Journal(run.ID, seqs[0], func(e state.Entry) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatalf("Journal after the process ended: %v", err)
	}
	if len(seqs) != 2 || seqs[1] != 2 {
		t.Errorf("journal seqs = %v, want [1 2] (the rest read from the file)", seqs)
	}
	if nodes, err := r.Nodes(run.ID); err != nil || nodes[1].State != state.NodeRunning {
		t.Errorf("Nodes after the fallback = %+v, %v", nodes, err)
	}
}
