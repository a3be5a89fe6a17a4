package engine_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
)

const gateGraph = `version: 1
name: gates
nodes:
  - {id: lis, kind: application, plugin: noop}
  - {id: lab-reentry, kind: data, plugin: manual, depends_on: [lis]}
  - {id: lab-report, kind: data, plugin: noop, depends_on: [lab-reentry]}
  - {id: other, kind: application, plugin: noop}
`

func gateHost() *enginetest.FakeHost {
	return &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.Plugin == "manual" {
			return step.Result{Status: step.Waiting, Message: "waiting for the lab manager"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
}

func TestGateParksApproveResume(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, gateGraph)
	st := enginetest.MustStore(t, dir)
	h := gateHost()
	e := engine.New(st, h, engine.Options{})
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunParked || !slices.Equal(res.Waiting, []string{"lab-reentry"}) {
		t.Fatalf("result %+v, want parked on lab-reentry", res)
	}
	if err := e.Approve(context.Background(), res.RunID, "lis", "alice", ""); !errors.Is(err, engine.ErrNotWaiting) {
		t.Errorf("approve a succeeded node: err = %v, want ErrNotWaiting", err)
	}
	if err := e.Approve(context.Background(), res.RunID, "lab-reentry", "alice", "paper records typed in"); err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Node(res.RunID, "lab-reentry")
	if rec.State != state.NodeSucceeded || rec.ApprovedBy != "alice" || rec.ApprovalComment != "paper records typed in" || rec.ApprovedAt.IsZero() {
		t.Errorf("record after approval: %+v", rec)
	}
	var approved *state.Entry
	st.Journal(res.RunID, 0, func(e state.Entry) error {
		if e.Type == state.EntryApproved {
			approved = &e
		}
		return nil
	})
	if approved == nil || approved.By != "alice" || approved.Message != "paper records typed in" {
		t.Errorf("approved entry = %+v", approved)
	}
	res2, err := e.Resume(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.RunID != res.RunID || res2.Status != state.RunSucceeded {
		t.Fatalf("resume: %+v", res2)
	}
	if n := strings.Count(strings.Join(h.Restored(), " "), "lis"); n != 1 {
		t.Errorf("lis restored %d times, want 1", n)
	}
}

func TestWaitApprovesLive(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, gateGraph)
	st := enginetest.MustStore(t, dir)
	waiting := make(chan string, 1)
	e := engine.New(st, gateHost(), engine.Options{Wait: true, OnEvent: func(ev engine.Event) {
		if ev.Type == engine.EventNodeFinished && ev.State == state.NodeWaiting {
			waiting <- ev.RunID
		}
	}})
	done := make(chan engine.Result, 1)
	go func() {
		res, err := e.Start(context.Background(), g)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var runID string
	select {
	case runID = <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("gate never reached")
	}
	if e.LiveRun() != runID {
		t.Errorf("live run %q, want %q", e.LiveRun(), runID)
	}
	if err := e.Approve(context.Background(), runID, "lab-reentry", "bob", "ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.Status != state.RunSucceeded {
			t.Errorf("status %s, want succeeded", res.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not finish after approval")
	}
}

func TestResumeRunsFailedAgainNeverSucceeded(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: resume
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
  - {id: b, kind: application, plugin: noop, depends_on: [a]}
  - {id: c, kind: application, plugin: noop}
`)
	st := enginetest.MustStore(t, dir)
	var broken atomic.Bool
	broken.Store(true)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "a" && broken.Load() {
			return step.Result{Status: step.Failed, Message: "broken"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{})
	res, err := e.Start(context.Background(), g)
	if err != nil || res.Status != state.RunFailed {
		t.Fatalf("first run: %+v %v", res, err)
	}
	broken.Store(false)
	res, err = e.Resume(context.Background(), res.RunID, nil)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume: %+v %v", res, err)
	}
	want := []string{"a", "c", "a", "b"}
	got := h.Restored()
	slices.Sort(got[:2])
	if !slices.Equal(got, want) {
		t.Errorf("restores %v, want %v", got, want)
	}
	rep, err := st.Verify(res.RunID)
	if err != nil || !rep.OK {
		t.Errorf("verify: %+v %v", rep, err)
	}
	// A resume of a finished run starts nothing.
	before := len(h.Calls())
	res, err = e.Resume(context.Background(), res.RunID, nil)
	if err != nil || res.Status != state.RunSucceeded || len(h.Calls()) != before {
		t.Errorf("resume of a finished run: %+v %v, %d new calls", res, err, len(h.Calls())-before)
	}
}

// TestResumeChecksNodesLeftRunning simulates a crash: nodes recorded running
// are asked Check; the restored one succeeds without running again, the
// other runs again.
func TestResumeChecksNodesLeftRunning(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: crash
nodes:
  - {id: done-before, kind: infrastructure, plugin: noop}
  - {id: restored, kind: infrastructure, plugin: noop}
  - {id: half, kind: infrastructure, plugin: noop}
  - {id: after, kind: application, plugin: noop, depends_on: [restored, half]}
`)
	st := enginetest.MustStore(t, dir)
	runID := crashRun(t, st, g, map[string]state.NodeState{"done-before": state.NodeSucceeded, "restored": state.NodeRunning, "half": state.NodeRunning})
	h := &enginetest.FakeHost{OnCheck: func(_ context.Context, req step.Request) (step.CheckResult, error) {
		return step.CheckResult{Restored: req.NodeID == "restored", Message: "looked"}, nil
	}}
	res, err := engine.New(st, h, engine.Options{}).Resume(context.Background(), "", nil)
	if err != nil || res.Status != state.RunSucceeded || res.RunID != runID {
		t.Fatalf("resume: %+v %v", res, err)
	}
	got := h.Restored()
	slices.Sort(got)
	if want := []string{"after", "half"}; !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
	var checked []string
	for _, c := range h.Calls() {
		if c.Op == "check" {
			checked = append(checked, c.Req.NodeID)
		}
	}
	slices.Sort(checked)
	if !slices.Equal(checked, []string{"half", "restored"}) {
		t.Errorf("checked %v", checked)
	}
	types := strings.Join(enginetest.JournalTypes(t, st, runID), "\n")
	for _, want := range []string{"restored restored", "reset half", "run-resumed", "run-finished"} {
		if !strings.Contains(types, want) {
			t.Errorf("journal lacks %q:\n%s", want, types)
		}
	}
}

// TestResumeCheckOutputs: a node left running and found restored gets the
// outputs Check gives (its dependents' placeholders resolve from them); one
// found restored without an output a dependent uses is restored again.
func TestResumeCheckOutputs(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: crash-outputs
nodes:
  - {id: db, kind: infrastructure, plugin: noop}
  - {id: share, kind: infrastructure, plugin: noop}
  - {id: dpi, kind: application, plugin: noop, depends_on: [db, share],
     with: {dsn: "${nodes.db.outputs.dsn}", path: "${nodes.share.outputs.path}"}}
`)
	st := enginetest.MustStore(t, dir)
	runID := crashRun(t, st, g, map[string]state.NodeState{"db": state.NodeRunning, "share": state.NodeRunning})
	var mu sync.Mutex
	var dpiWith map[string]any
	h := &enginetest.FakeHost{
		OnCheck: func(_ context.Context, req step.Request) (step.CheckResult, error) {
			switch req.NodeID {
			case "db":
				return step.CheckResult{Restored: true, Message: "instance up", Outputs: map[string]string{"dsn": "pg://db:5432/dpi"}}, nil
			case "share":
				return step.CheckResult{Restored: true, Message: "mounted"}, nil // no outputs
			}
			return step.CheckResult{}, nil
		},
		OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
			switch req.NodeID {
			case "share":
				return step.Result{Status: step.Succeeded, Outputs: map[string]string{"path": "/mnt/share"}}, nil
			case "dpi":
				mu.Lock()
				dpiWith = req.Config
				mu.Unlock()
			}
			return step.Result{Status: step.Succeeded}, nil
		},
	}
	res, err := engine.New(st, h, engine.Options{}).Resume(context.Background(), "", nil)
	if err != nil || res.Status != state.RunSucceeded || res.RunID != runID {
		t.Fatalf("resume: %+v %v", res, err)
	}
	got := h.Restored()
	slices.Sort(got)
	if want := []string{"dpi", "share"}; !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v (db was restored with its outputs)", got, want)
	}
	if dpiWith["dsn"] != "pg://db:5432/dpi" || dpiWith["path"] != "/mnt/share" {
		t.Errorf("dpi's with = %v, want the dsn from db's check and the path from share's restore", dpiWith)
	}
	db, err := st.Node(runID, "db")
	if err != nil || db.Outputs["dsn"] != "pg://db:5432/dpi" {
		t.Errorf("db's stored outputs = %v (%v), want its check's", db.Outputs, err)
	}
	journal := strings.Join(enginetest.JournalTypes(t, st, runID), "\n")
	for _, want := range []string{"restored db", "reset share"} {
		if !strings.Contains(journal, want) {
			t.Errorf("journal lacks %q:\n%s", want, journal)
		}
	}
}

// crashRun creates a run of g whose records look like a crash left them.
func crashRun(t *testing.T, st *state.Store, g *graphs.Graph, states map[string]state.NodeState) string {
	t.Helper()
	now := time.Now()
	run := state.Run{ID: state.NewRunID(now), GraphName: g.Name, GraphFile: g.File, Status: state.RunRunning, Created: now}
	recs := make([]state.NodeRecord, len(g.Nodes))
	for i, n := range g.Nodes {
		recs[i] = state.NodeRecord{ID: n.ID, State: state.NodePending}
		if s, ok := states[n.ID]; ok {
			recs[i].State = s
			recs[i].Attempts = 1
			recs[i].Started = now
			recs[i].History = []state.Attempt{{N: 1, Started: now}}
		}
	}
	if err := st.CreateRun(context.Background(), run, g.Source, recs); err != nil {
		t.Fatal(err)
	}
	return run.ID
}

// TestResumeEditedPluginPin: a vendor plugin re-pinned (a fixed binary)
// is journaled by name on resume --graph; the nodes already done with the
// old binary stay done, the others run with the new declaration.
func TestResumeEditedPluginPin(t *testing.T) {
	dir := t.TempDir()
	src := `version: 1
name: repin
plugins:
  lab-vendor: {path: ./lab-plugin, sha256: ` + strings.Repeat("a", 64) + `}
nodes:
  - {id: lis, kind: application, plugin: lab-vendor}
  - {id: lab-reentry, kind: data, plugin: lab-vendor, depends_on: [lis]}
`
	g := enginetest.MustGraph(t, dir, src)
	st := enginetest.MustStore(t, dir)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "lab-reentry" {
			return step.Result{Status: step.Failed, Message: "vendor bug: HPRIM parse error"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := engine.New(st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunFailed {
		t.Fatalf("start: %+v %v", res, err)
	}
	edited := strings.Replace(src, strings.Repeat("a", 64), strings.Repeat("b", 64), 1)
	if err := os.WriteFile(dir+"/edited.yaml", []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	eg, err := graphs.Load(dir + "/edited.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h2 := &enginetest.FakeHost{}
	res, err = engine.New(st, h2, engine.Options{}).Resume(context.Background(), res.RunID, eg)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume: %+v %v", res, err)
	}
	if got := h2.Restored(); !slices.Equal(got, []string{"lab-reentry"}) {
		t.Errorf("restored on resume %v, want [lab-reentry] (lis was done)", got)
	}
	var changed *state.Entry
	st.Journal(res.RunID, 0, func(e state.Entry) error {
		if e.Type == state.EntryGraphChanged {
			changed = &e
		}
		return nil
	})
	if changed == nil || changed.Data["plugins"] != "lab-vendor" || changed.Data["changed"] != "" ||
		!strings.Contains(changed.Message, "plugin declarations changed: lab-vendor") {
		t.Errorf("graph-changed entry: %+v", changed)
	}
}

func TestRetryAndMark(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: ops
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
  - {id: b, kind: application, plugin: noop, depends_on: [a]}
  - {id: c, kind: application, plugin: noop, depends_on: [b]}
`)
	st := enginetest.MustStore(t, dir)
	var fail sync.Map
	fail.Store("a", true)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if _, ok := fail.Load(req.NodeID); ok {
			return step.Result{Status: step.Failed, Message: "nope"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{})
	res, _ := e.Start(context.Background(), g)
	if err := e.Mark(context.Background(), res.RunID, "a", "carol", ""); err == nil {
		t.Error("mark without a reason: no error")
	}
	if err := e.Mark(context.Background(), res.RunID, "a", "carol", "restored by hand from tape"); err != nil {
		t.Fatal(err)
	}
	res, err := e.Resume(context.Background(), res.RunID, nil)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume after mark: %+v %v", res, err)
	}
	rec, _ := st.Node(res.RunID, "a")
	if rec.MarkedBy != "carol" || rec.MarkReason != "restored by hand from tape" {
		t.Errorf("marked record %+v", rec)
	}
	before := len(h.Restored())
	res, err = e.Retry(context.Background(), res.RunID, "b", true, "dave")
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if got := h.Restored()[before:]; !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("retry --downstream ran %v, want [b c]", got)
	}
	before = len(h.Restored())
	if _, err := e.Retry(context.Background(), res.RunID, "b", false, "dave"); err != nil {
		t.Fatal(err)
	}
	if got := h.Restored()[before:]; !slices.Equal(got, []string{"b"}) {
		t.Errorf("retry ran %v, want [b]", got)
	}
}

// TestResetKeepsStatusHonest: a succeeded run whose node is reset must not
// stay "succeeded" (Resume trusts that status and would do nothing).
func TestResetKeepsStatusHonest(t *testing.T) {
	dir := t.TempDir()
	st := enginetest.MustStore(t, dir)
	h := &enginetest.FakeHost{}
	e := engine.New(st, h, engine.Options{})
	res, err := e.Start(context.Background(), enginetest.MustGraph(t, dir, enginetest.ChainGraph(3, true)))
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("start: %+v %v", res, err)
	}
	ids, err := e.ResetNodes(context.Background(), res.RunID, "n0001", false, "erin")
	if err != nil || !slices.Equal(ids, []string{"n0001"}) {
		t.Fatalf("reset: %v %v", ids, err)
	}
	run, _ := st.Run(res.RunID)
	if run.Status != state.RunInterrupted {
		t.Errorf("status after reset: %s, want interrupted", run.Status)
	}
	before := len(h.Restored())
	res, err = e.Resume(context.Background(), "", nil)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume: %+v %v", res, err)
	}
	if got := h.Restored()[before:]; !slices.Equal(got, []string{"n0001"}) {
		t.Errorf("resume ran %v, want [n0001]", got)
	}
}
