package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// TestApproveClearsStaleError: a gate that failed once, then waited for
// approval, loses its old error when approved: no view shows a succeeded
// node with an error.
func TestApproveClearsStaleError(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, "version: 1\nname: gate\nnodes:\n  - {id: gate, kind: data, plugin: manual}\n")
	st := enginetest.MustStore(t, dir)
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	run := state.Run{ID: "r1", GraphName: "gate", GraphFile: g.File, Status: state.RunParked, Created: now, Total: 1}
	recs := []state.NodeRecord{{ID: "gate", State: state.NodeWaiting, Attempts: 2, LastError: "exit status 1: printer offline",
		History: []state.Attempt{{N: 1, Started: now, Ended: now, Result: state.NodeFailed, Error: "exit status 1: printer offline"},
			{N: 2, Started: now, Ended: now, Result: state.NodeWaiting}}}}
	if err := st.CreateRun(context.Background(), run, g.Source, recs); err != nil {
		t.Fatal(err)
	}
	e := engine.New(st, &enginetest.FakeHost{}, engine.Options{})
	if err := e.Approve(context.Background(), "r1", "gate", "dr.martin", "checked"); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Node("r1", "gate")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != state.NodeSucceeded || rec.LastError != "" {
		t.Errorf("approved gate: state %s, last error %q; want succeeded without an error", rec.State, rec.LastError)
	}
}
