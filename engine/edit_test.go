package engine_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
)

const editSrc = `version: 1
name: edit
defaults: {retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop}
  - {id: dns, kind: infrastructure, plugin: noop, depends_on: [ad]}
  - {id: pacs, kind: application, plugin: noop, depends_on: [dns], with: {v: 1}}
  - {id: old, kind: application, plugin: noop}
  - {id: lab, kind: application, plugin: noop, depends_on: [ad], with: {v: 1}}
`

// mustEdit writes src as edited.yaml in dir and loads it.
func mustEdit(t *testing.T, dir, src string) *graphs.Graph {
	t.Helper()
	if err := os.WriteFile(dir+"/edited.yaml", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(dir + "/edited.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func graphChanged(st *state.Store, runID string) *state.Entry {
	var changed *state.Entry
	st.Journal(runID, 0, func(e state.Entry) error {
		if e.Type == state.EntryGraphChanged {
			changed = &e
		}
		return nil
	})
	return changed
}

// TestResumeEditedGraph: an edit never re-runs a completed restore by
// surprise. Metadata edits (title, estimate, criticality, timeout, retries)
// reset nothing; a done node whose step changed is kept (listed "changed
// since done"); a failed node whose step changed runs with the new
// definition; new nodes join, removed nodes leave. --rerun-changed runs the
// changed done nodes again, and only them.
func TestResumeEditedGraph(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, editSrc)
	st := enginetest.MustStore(t, dir)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "lab" && req.Config["v"] == 1 {
			return step.Result{Status: step.Failed, Message: "bad version"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{})
	res, err := e.Start(context.Background(), g)
	if err != nil || res.Status != state.RunFailed {
		t.Fatalf("start: %+v %v", res, err)
	}
	edited := strings.Replace(editSrc, "  - {id: old, kind: application, plugin: noop}\n", "", 1)
	edited = strings.Replace(edited, "{id: dns, kind: infrastructure, plugin: noop, depends_on: [ad]}",
		"{id: dns, kind: infrastructure, plugin: noop, depends_on: [ad], title: DNS with new zone, estimate: 2h, criticality: vital, timeout: 1h, retries: 4}", 1)
	edited = strings.Replace(edited, "depends_on: [dns], with: {v: 1}", "depends_on: [dns], with: {v: 2}", 1)
	edited = strings.Replace(edited, "depends_on: [ad], with: {v: 1}", "depends_on: [ad], with: {v: 2}", 1)
	edited += "  - {id: ris, kind: application, plugin: noop, depends_on: [ad]}\n"
	eg := mustEdit(t, dir, edited)

	stored, _ := st.Nodes(res.RunID)
	run, _ := st.Run(res.RunID)
	plan := engine.PlanEdit(run, g, eg, stored, false)
	ids := func(items []engine.EditItem) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		got  []string
		want []string
	}{
		{"added", ids(plan.Added), []string{"ris"}},
		{"removed", ids(plan.Removed), []string{"old"}},
		{"kept", ids(plan.Kept), []string{"pacs"}},
		{"rerun", ids(plan.Rerun), nil},
		{"updated", ids(plan.Updated), []string{"lab"}},
		{"metadata", ids(plan.Metadata), []string{"dns"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("plan %s: got %v want %v", c.name, c.got, c.want)
		}
	}
	if txt := plan.Text(); !strings.Contains(txt, "pacs [succeeded]: with changed since done: kept done") ||
		!strings.Contains(txt, "dns [succeeded]: title, estimate, criticality, timeout, retries changed: nothing runs again") {
		t.Errorf("plan text:\n%s", txt)
	}

	before := len(h.Restored())
	res, err = e.Resume(context.Background(), res.RunID, eg)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume edited: %+v %v", res, err)
	}
	got := h.Restored()[before:]
	slices.Sort(got)
	if want := []string{"lab", "ris"}; !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v (no completed node re-run by an edit)", got, want)
	}
	states := enginetest.NodeStates(t, st, res.RunID)
	if _, ok := states["old"]; ok || len(states) != 5 {
		t.Errorf("records after edit: %v", states)
	}
	snap, _ := st.Snapshot(res.RunID)
	if string(snap) != edited {
		t.Errorf("snapshot not replaced")
	}
	changed := graphChanged(st, res.RunID)
	if changed == nil || changed.Data["added"] != "ris" || changed.Data["removed"] != "old" ||
		changed.Data["changed"] != "lab,pacs" || changed.Data["kept"] != "pacs" || changed.Data["rerun"] != "" ||
		changed.Data["metadata"] != "dns" || changed.Data["updated"] != "lab" {
		t.Errorf("graph-changed entry: %+v", changed)
	}

	// --rerun-changed: pacs's step changes again and it runs again; its
	// dependents and the metadata-edited nodes do not.
	edited2 := strings.Replace(edited, "with: {v: 2}}", "with: {v: 3}}", 1)
	edited2 = strings.Replace(edited2, "title: DNS with new zone", "title: DNS", 1)
	eg2 := mustEdit(t, dir, edited2)
	before = len(h.Restored())
	res, err = e.ResumeWith(context.Background(), res.RunID, engine.ResumeOptions{Graph: eg2, RerunChanged: true})
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume --rerun-changed: %+v %v", res, err)
	}
	if got := h.Restored()[before:]; !slices.Equal(got, []string{"pacs"}) {
		t.Errorf("--rerun-changed ran %v, want [pacs]", got)
	}
	if c := graphChanged(st, res.RunID); c == nil || c.Data["rerun"] != "pacs" || c.Data["metadata"] != "dns" {
		t.Errorf("second graph-changed entry: %+v", c)
	}
}

// TestRetryRunsOnlyThatNode: retry re-runs the node asked (with downstream
// its descendants) and nothing else: another failed node stays failed.
func TestRetryRunsOnlyThatNode(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: retry
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
  - {id: b, kind: infrastructure, plugin: noop}
  - {id: c, kind: application, plugin: noop, depends_on: [a]}
`)
	st := enginetest.MustStore(t, dir)
	var fixed sync.Map
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if _, ok := fixed.Load(req.NodeID); !ok && req.NodeID != "c" {
			return step.Result{Status: step.Failed, Message: "broken"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{})
	res, _ := e.Start(context.Background(), g)
	fixed.Store("a", true)
	items, err := e.PlanRetry(res.RunID, "a", false)
	if err != nil || len(items) != 1 || items[0].ID != "a" || items[0].State != state.NodeFailed {
		t.Fatalf("plan retry: %+v %v", items, err)
	}
	if _, err := e.PlanRetry(res.RunID, "aa", false); err == nil || !strings.Contains(err.Error(), `did you mean "a"?`) {
		t.Errorf("mistyped node: %v", err)
	}
	before := len(h.Restored())
	res, err = e.Retry(context.Background(), res.RunID, "a", false, "dave")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Restored()[before:]; !slices.Equal(got, []string{"a"}) {
		t.Errorf("retry a ran %v, want [a] (b is another failure, c not asked)", got)
	}
	states := enginetest.NodeStates(t, st, res.RunID)
	if states["a"] != state.NodeSucceeded || states["b"] != state.NodeFailed || states["c"] != state.NodeBlocked || res.Status != state.RunFailed {
		t.Errorf("after retry: %v, status %s", states, res.Status)
	}
	before = len(h.Restored())
	if _, err := e.Retry(context.Background(), res.RunID, "a", true, "dave"); err != nil {
		t.Fatal(err)
	}
	if got := h.Restored()[before:]; !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("retry --downstream a ran %v, want [a c]", got)
	}
	if s := enginetest.NodeStates(t, st, res.RunID)["b"]; s != state.NodeFailed {
		t.Errorf("b after retry --downstream a: %s, want failed", s)
	}
}
