package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

// TestCLIEmptyStateFile: a zero-length state file (a creation cut short)
// holds no run, and every command says so the same way: readers report no
// run, never damage; a run rebuilds the file and goes on.
func TestCLIEmptyStateFile(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	if err := os.WriteFile(d.path("reprise.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"runs"}, {"log"}, {"log", "--verify"}, {"report"}} {
		_, stderr, code := d.run(args...)
		if code != exitError || !strings.Contains(stderr, "holds no run yet") || strings.Contains(stderr, "damaged") {
			t.Errorf("reprise %s on an empty state file: exit %d, stderr %q; want exit 1 saying it holds no run yet", strings.Join(args, " "), code, stderr)
		}
	}
	if _, stderr, code := d.run("resume"); code != exitError || !strings.Contains(stderr, "no unfinished run") {
		t.Errorf("reprise resume on an empty state file: exit %d, stderr %q; want no unfinished run", code, stderr)
	}
	g := d.write("graph.yaml", "version: 1\nname: g\nnodes:\n  - {id: a, kind: application, plugin: noop}\n")
	d.mustRun(0, "run", g)
	if s := d.status(); s.Status != "succeeded" {
		t.Errorf("status after a run on a rebuilt file: %+v", s)
	}
}

// TestReaderAcrossRunEnd: a status or log call made while a run holds the
// file goes through its socket; when the run ends in the middle (socket
// gone, then the file let go), the call reads the file instead of failing
// with a raw dial error. And a call made while a run has the file but not
// yet its socket waits for the socket.
func TestReaderAcrossRunEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	run := state.Run{ID: "r1", GraphName: "g", Status: state.RunRunning}
	if err := st.CreateRun(context.Background(), run, []byte("version: 1\n"), []state.NodeRecord{{ID: "a", State: state.NodePending}}); err != nil {
		t.Fatal(err)
	}
	backend := control.Backend{Store: st, Live: func() string { return "r1" }}
	// The socket comes up a moment after the file was opened.
	var srv *control.Server
	up := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		var err error
		srv, err = control.Listen(control.SocketPath(path), backend)
		up <- err
	})
	r, live, closeFn, err := openReader(path)
	if err != nil {
		t.Fatalf("openReader before the socket is up: %v", err)
	}
	defer closeFn()
	if err := <-up; err != nil {
		t.Fatal(err)
	}
	if live != "r1" {
		t.Errorf("live = %q, want r1", live)
	}
	// The run ends: socket closed, the file let go a little later.
	srv.Close()
	time.AfterFunc(200*time.Millisecond, func() { st.Close() })
	nodes, err := r.Nodes("r1")
	if err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes after the socket went away = %v, %v; want the file read", nodes, err)
	}
	n := 0
	if err := r.Journal("r1", 0, func(state.Entry) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("Journal after the socket went away: %d entries, %v", n, err)
	}
}
