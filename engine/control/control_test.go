package control_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

func TestServeAndDial(t *testing.T) {
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	run := state.Run{ID: state.NewRunID(now), GraphName: "g", Status: state.RunRunning, Created: now}
	recs := []state.NodeRecord{{ID: "a", State: state.NodeSucceeded}, {ID: "gate", State: state.NodeWaiting}}
	if err := st.CreateRun(context.Background(), run, []byte("version: 1\n"), recs); err != nil {
		t.Fatal(err)
	}
	srv, err := control.Listen(control.SocketPath(st.Path()), control.Backend{
		Store: st,
		Live:  func() string { return run.ID },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := control.Dial(control.SocketPath(st.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if live, err := c.Live(); err != nil || live != run.ID {
		t.Errorf("Live = %q, %v", live, err)
	}
	if runs, err := c.Runs(); err != nil || len(runs) != 1 || runs[0].ID != run.ID {
		t.Errorf("Runs = %+v, %v", runs, err)
	}
	if nodes, err := c.Nodes(run.ID); err != nil || len(nodes) != 2 {
		t.Errorf("Nodes = %+v, %v", nodes, err)
	}
	if snap, err := c.Snapshot(run.ID); err != nil || string(snap) != "version: 1\n" {
		t.Errorf("Snapshot = %q, %v", snap, err)
	}
	var types []string
	if err := c.Journal(run.ID, 0, func(e state.Entry) error { types = append(types, string(e.Type)); return nil }); err != nil || len(types) == 0 {
		t.Errorf("Journal = %v, %v", types, err)
	}
	if rep, err := c.Verify(run.ID); err != nil || !rep.OK {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
	if _, err := c.Run("nope"); !errors.Is(err, state.ErrRunNotFound) {
		t.Errorf("Run(nope): %v, want ErrRunNotFound", err)
	}
	if err := c.Approve(context.Background(), run.ID, "gate", "bob", "ok"); err == nil || !strings.Contains(err.Error(), "not served by this process") {
		t.Errorf("Approve through a server without actions: %v", err)
	}
	if err := c.PutOperator(state.Operator{Name: "ann", Role: "approver", TokenID: "t1", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if ops, err := c.Operators(); err != nil || len(ops) != 1 || ops[0].Name != "ann" || ops[0].Hash != "h1" {
		t.Errorf("Operators = %+v, %v", ops, err)
	}
	if err := c.DeleteOperator("nobody"); !errors.Is(err, state.ErrOperatorNotFound) {
		t.Errorf("DeleteOperator(nobody): %v, want ErrOperatorNotFound", err)
	}
	if err := c.DeleteOperator("ann"); err != nil {
		t.Fatal(err)
	}
	if ops, err := st.Operators(); err != nil || len(ops) != 0 {
		t.Errorf("after delete: %+v, %v", ops, err)
	}
	srv.Close()
	if _, err := control.Dial(control.SocketPath(st.Path())); !errors.Is(err, control.ErrNoServer) {
		t.Errorf("Dial after Close: %v, want ErrNoServer", err)
	}
}
