package control_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// liveGraph keeps its run going (slow waits for the file "go") while an
// operator acts on it: tape fails until "fixed" exists (retry), vault
// fails for good (mark), gate waits (approve), records has a point taken
// after the incident (restore-point --use), and care waits for core's
// certification.
const liveGraph = `version: 1
name: live
defaults: {retries: 0}
zones:
  - {id: core, title: Trusted core}
  - {id: care, title: Care}
incident: {detected: '2026-11-30T03:00:00Z'}
scanners:
  entropy: {type: entropy, threshold: 0.5}
nodes:
  - {id: slow, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'while [ ! -f go ]; do sleep 0.05; done; echo slow >> ran.txt']}}
  - {id: ad, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo ad >> ran.txt']}}
  - {id: tape, kind: data, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, zone: core, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
  - {id: vault, kind: data, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo vault >> ran.txt; exit 1']}}
  - {id: vault-check, kind: application, plugin: exec, zone: core, depends_on: [vault], with: {restore: [sh, -c, 'echo vault-check >> ran.txt']}}
  - {id: gate, kind: data, plugin: manual, zone: core, depends_on: [ad]}
  - id: records
    kind: data
    plugin: exec
    zone: care
    scan: [entropy]
    restore_points:
      - {id: r1, time: '2026-11-29T02:00:00Z', path: points/r1}
      - {id: r2, time: '2026-11-30T05:00:00Z', path: points/r2}
    with: {restore: [sh, -c, 'echo "records $REPRISE_RESTORE_POINT" >> ran.txt']}
  - {id: dpi, kind: application, plugin: exec, zone: care, depends_on: [ad, records], with: {restore: [sh, -c, 'echo dpi >> ran.txt']}}
`

// liveRun is a run of liveGraph going on in this process (the real
// engine, the exec plugin out of process) with its control socket, and a
// client of that socket.
type liveRun struct {
	dir  string
	st   *state.Store
	eng  *engine.Engine
	c    *control.Client
	id   string
	done chan engine.Result
}

func startLive(t *testing.T) *liveRun {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"r1", "r2"} {
		if err := os.MkdirAll(filepath.Join(dir, "points", p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "points", p, "notes.txt"), []byte("patient notes, plain text\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := enginetest.MustGraph(t, dir, liveGraph)
	st := enginetest.MustStore(t, dir)
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand})
	t.Cleanup(func() { h.Close() })
	eng := engine.New(st, h, engine.Options{Wait: true, Parallelism: 4})
	srv, err := control.Listen(control.SocketPath(st.Path()), control.Backend{Store: st, Actions: eng, Live: eng.LiveRun})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	lr := &liveRun{dir: dir, st: st, eng: eng, done: make(chan engine.Result, 1)}
	go func() {
		res, err := eng.Start(context.Background(), g)
		if err != nil {
			t.Error(err)
		}
		lr.done <- res
	}()
	t.Cleanup(func() {
		eng.Drain()
		touch(t, dir, "go")
		select {
		case <-lr.done:
		case <-time.After(30 * time.Second):
			t.Error("the live run did not stop")
		}
	})
	if lr.c, err = control.Dial(control.SocketPath(st.Path())); err != nil {
		t.Fatal(err)
	}
	lr.id = waitFor(t, "the run to start", func() (string, bool) { id := eng.LiveRun(); return id, id != "" })
	return lr
}

func touch(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 30 s (a loaded machine).
func waitFor[T any](t *testing.T, what string, cond func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, ok := cond()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last: %v)", what, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// states reads the node states through the socket.
func (lr *liveRun) states(t *testing.T) map[string]state.NodeState {
	t.Helper()
	recs, err := lr.c.Nodes(lr.id)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]state.NodeState{}
	for _, r := range recs {
		m[r.ID] = r.State
	}
	return m
}

func (lr *liveRun) waitState(t *testing.T, node string, want state.NodeState) {
	t.Helper()
	waitFor(t, node+" "+string(want), func() (state.NodeState, bool) { s := lr.states(t)[node]; return s, s == want })
}

// TestLiveActions: certify, restore-point, retry, mark and approve sent
// through the control socket reach the run going on in the serving
// process, are journaled with the operator's name, and the run goes on from
// them: a retried node runs again and its dependent after it, a marked
// node's dependent starts, an approved gate succeeds, and the run, waiting
// (--wait) at core's certification, starts care once it is certified and
// restores records from the point the operator chose.
func TestLiveActions(t *testing.T) {
	lr := startLive(t)
	ctx := context.Background()
	for node, want := range map[string]state.NodeState{"tape": state.NodeFailed, "db": state.NodeBlocked,
		"vault": state.NodeFailed, "vault-check": state.NodeBlocked, "gate": state.NodeWaiting, "slow": state.NodeRunning} {
		lr.waitState(t, node, want)
	}
	if live, err := lr.c.Live(); err != nil || live != lr.id {
		t.Fatalf("Live = %q, %v", live, err)
	}

	// Actions that do not apply are refused, with a kind the client sees.
	if err := lr.c.Mark(ctx, lr.id, "slow", "ann", "done by hand"); !errors.Is(err, state.ErrNotApplicable) || !strings.Contains(err.Error(), "node is running") {
		t.Errorf("mark of a running node: %v, want not applicable (running)", err)
	}
	if _, err := lr.c.ResetNodes(ctx, lr.id, "slow", false, "ann"); !errors.Is(err, state.ErrNotApplicable) {
		t.Errorf("retry of a running node: %v, want not applicable", err)
	}
	if err := lr.c.Certify(ctx, lr.id, "core", "ann", "checked"); !errors.Is(err, state.ErrNotApplicable) || !strings.Contains(err.Error(), "not done") {
		t.Errorf("certify of a zone not done: %v", err)
	}
	if err := lr.c.Approve(ctx, lr.id, "ad", "ann", ""); !errors.Is(err, state.ErrNotWaiting) {
		t.Errorf("approve of a node that does not wait: %v", err)
	}
	if err := lr.c.Mark(ctx, lr.id, "nope", "ann", "x"); !errors.Is(err, state.ErrNodeNotFound) {
		t.Errorf("mark of an unknown node: %v", err)
	}

	// The run goes on from each action.
	if err := lr.c.RestorePointDecision(ctx, lr.id, "records", engine.PointUse, "r2", "Dr. Lefèvre", "r2 checked by hand"); err != nil {
		t.Fatalf("restore-point --use: %v", err)
	}
	touch(t, lr.dir, "fixed")
	ids, err := lr.c.ResetNodes(ctx, lr.id, "tape", false, "carol")
	if err != nil || !slices.Equal(ids, []string{"tape"}) {
		t.Fatalf("retry tape: %v, %v", ids, err)
	}
	lr.waitState(t, "db", state.NodeSucceeded)
	// A retry with its downstream of nodes done: both run again, db after
	// tape (its count of dependencies not done goes up again).
	ids, err = lr.c.ResetNodes(ctx, lr.id, "tape", true, "carol")
	if err != nil || !slices.Equal(ids, []string{"tape", "db"}) {
		t.Fatalf("retry tape --downstream: %v, %v", ids, err)
	}
	waitFor(t, "tape and db run again", func() ([]string, bool) {
		ran := fileLines(t, filepath.Join(lr.dir, "ran.txt"))
		return ran, strings.Count(strings.Join(ran, ","), "db") == 2
	})
	lr.waitState(t, "db", state.NodeSucceeded)
	if err := lr.c.Mark(ctx, lr.id, "vault", "dave", "restored from the offsite copy"); err != nil {
		t.Fatalf("mark vault: %v", err)
	}
	lr.waitState(t, "vault-check", state.NodeSucceeded)
	if err := lr.c.Approve(ctx, lr.id, "gate", "erin", "signed"); err != nil {
		t.Fatalf("approve: %v", err)
	}
	touch(t, lr.dir, "go")
	lr.waitState(t, "slow", state.NodeSucceeded)

	// --wait: every core node done, care held by core's certification: the
	// run waits instead of parking.
	time.Sleep(300 * time.Millisecond)
	if live, _ := lr.c.Live(); live != lr.id {
		t.Fatalf("the run stopped at the zone gate instead of waiting (--wait): live %q", live)
	}
	if s := lr.states(t); s["records"] != state.NodePending || s["dpi"] != state.NodePending {
		t.Fatalf("care started before core was certified: %v", s)
	}
	if err := lr.c.Certify(ctx, lr.id, "core", "frank", "AD, DNS and the vault checked clean"); err != nil {
		t.Fatalf("certify core: %v", err)
	}
	var res engine.Result
	select {
	case res = <-lr.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not finish after core was certified")
	}
	lr.done <- res // for the cleanup
	if res.Status != state.RunSucceeded {
		t.Fatalf("result %+v, want succeeded", res)
	}
	ran := fileLines(t, filepath.Join(lr.dir, "ran.txt"))
	var tapeDB []string
	for _, l := range ran {
		if l == "tape" || l == "db" {
			tapeDB = append(tapeDB, l)
		}
	}
	if want := []string{"tape", "tape", "db", "tape", "db"}; !slices.Equal(tapeDB, want) {
		t.Errorf("tape and db ran %v, want %v (failed, retried, then again with the downstream)", tapeDB, want)
	}
	if !slices.Contains(ran, "records r2") || slices.Index(ran, "dpi") < slices.Index(ran, "records r2") {
		t.Errorf("ran %v: want records from r2 (the operator's choice), then dpi", ran)
	}

	// Each action is journaled with who.
	by := map[string]string{}
	if err := lr.st.Journal(lr.id, 0, func(e state.Entry) error {
		if e.By != "" {
			by[string(e.Type)+" "+e.NodeID+e.Data["zone"]] = e.By
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"point-override records": "Dr. Lefèvre", "reset tape": "carol",
		"marked vault": "dave", "approved gate": "erin", "zone-certified core": "frank"} {
		if by[k] != want {
			t.Errorf("journal %q by %q, want %q (all: %v)", k, by[k], want, by)
		}
	}
	if rep, err := lr.st.Verify(lr.id); err != nil || !rep.OK {
		t.Errorf("journal check after the live actions: %+v, %v", rep, err)
	}
}

func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
