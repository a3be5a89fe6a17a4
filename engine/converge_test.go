package engine_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

const convergeGraph = `version: 1
name: converge
defaults: {retries: 0}
plugins:
  vendor: {path: ./vendor-plugin}
nodes:
  - {id: ad, kind: infrastructure, plugin: vendor}
  - {id: dns, kind: infrastructure, plugin: vendor}
  - {id: pacs, kind: application, plugin: vendor, depends_on: [ad], with: {host: "${nodes.ad.outputs.host}"}}
  - {id: lab, kind: application, plugin: vendor, depends_on: [dns]}
  - {id: ris, kind: application, plugin: vendor, depends_on: [lab]}
`

// convergeHost: ad and lab are already restored (Check says so, ad with
// its host output); lab's Verify fails; dns, pacs and ris are not.
func convergeHost(configs *sync.Map) *enginetest.FakeHost {
	return &enginetest.FakeHost{
		OnCheck: func(_ context.Context, req step.Request) (step.CheckResult, error) {
			switch req.NodeID {
			case "ad":
				return step.CheckResult{Restored: true, Message: "forest up", Outputs: map[string]string{"host": "dc1.chsf.local"}}, nil
			case "lab":
				return step.CheckResult{Restored: true, Message: "service answers"}, nil
			}
			return step.CheckResult{Message: "absent"}, nil
		},
		OnVerify: func(_ context.Context, req step.Request) (step.Result, error) {
			if req.NodeID == "lab" {
				return step.Result{Status: step.Failed, Message: "analyser queue stuck"}, nil
			}
			return step.Result{Status: step.Succeeded}, nil
		},
		OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
			configs.Store(req.NodeID, req.Config)
			return step.Result{Status: step.Succeeded}, nil
		},
	}
}

// TestConverge: run --check asks every node's Check before its Restore; a
// node found restored is recorded so with Check's outputs (dependents get
// them) and not restored; Verify runs on it and a failing Verify fails it.
func TestConverge(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, convergeGraph)
	st := enginetest.MustStore(t, dir)
	var configs sync.Map
	h := convergeHost(&configs)
	res, err := engine.New(st, h, engine.Options{Converge: true}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunFailed {
		t.Fatalf("run --check: %+v %v", res, err)
	}
	got := h.Restored()
	slices.Sort(got)
	if want := []string{"dns", "pacs"}; !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v (ad found restored; lab found restored but its Verify failed; ris blocked)", got, want)
	}
	checked := map[string]bool{}
	for _, c := range h.Calls() {
		if c.Op == "check" {
			checked[c.Req.NodeID] = true
		}
	}
	if len(checked) != 4 {
		t.Errorf("checked %v, want every node that started", checked)
	}
	if cfg, _ := configs.Load("pacs"); cfg.(map[string]any)["host"] != "dc1.chsf.local" {
		t.Errorf("pacs got %v: Check's outputs must reach dependents", cfg)
	}
	states := enginetest.NodeStates(t, st, res.RunID)
	if states["ad"] != state.NodeSucceeded || states["lab"] != state.NodeFailed || states["ris"] != state.NodeBlocked {
		t.Errorf("states %v", states)
	}
	rec, _ := st.Node(res.RunID, "ad")
	if rec.Outputs["host"] != "dc1.chsf.local" {
		t.Errorf("ad's stored outputs %v", rec.Outputs)
	}
	if rec, _ := st.Node(res.RunID, "lab"); !strings.Contains(rec.LastError, "verify: analyser queue stuck") {
		t.Errorf("lab's error %q", rec.LastError)
	}
	journal := strings.Join(enginetest.JournalTypes(t, st, res.RunID), "\n")
	if !strings.Contains(journal, "restored ad") {
		t.Errorf("journal lacks ad's restored entry:\n%s", journal)
	}
	if run, _ := st.Run(res.RunID); !run.Options.Converge {
		t.Error("the run does not keep converge mode for its resume")
	}
}

// TestResumeVerifiesRestored: on resume, a node left running and found
// restored by Check runs Verify before it is recorded succeeded; a failing
// Verify fails it (no retries) and blocks its dependents.
func TestResumeVerifiesRestored(t *testing.T) {
	for _, tc := range []struct {
		name      string
		verifyOK  bool
		wantState state.NodeState
	}{
		{"verify passes", true, state.NodeSucceeded},
		{"verify fails", false, state.NodeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			g := enginetest.MustGraph(t, dir, convergeGraph)
			st := enginetest.MustStore(t, dir)
			runID := crashRun(t, st, g, map[string]state.NodeState{"lab": state.NodeRunning})
			h := &enginetest.FakeHost{
				OnCheck: func(_ context.Context, req step.Request) (step.CheckResult, error) {
					return step.CheckResult{Restored: req.NodeID == "lab", Message: "service answers"}, nil
				},
				OnVerify: func(_ context.Context, req step.Request) (step.Result, error) {
					if req.NodeID == "lab" && !tc.verifyOK {
						return step.Result{Status: step.Failed, Message: "analyser queue stuck"}, nil
					}
					return step.Result{Status: step.Succeeded}, nil
				},
			}
			res, err := engine.New(st, h, engine.Options{}).Resume(context.Background(), runID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(h.Restored(), "lab") {
				t.Error("lab was restored again although Check found it restored")
			}
			verified := false
			for _, c := range h.Calls() {
				if c.Op == "verify" && c.Req.NodeID == "lab" {
					verified = true
				}
			}
			if !verified {
				t.Error("Verify was not called for lab")
			}
			states := enginetest.NodeStates(t, st, res.RunID)
			if states["lab"] != tc.wantState {
				t.Errorf("lab: %s, want %s", states["lab"], tc.wantState)
			}
			if !tc.verifyOK {
				if states["ris"] != state.NodeBlocked || slices.Contains(h.Restored(), "ris") {
					t.Errorf("ris: %s (restored: %v), want blocked behind lab", states["ris"], h.Restored())
				}
				if rec, _ := st.Node(res.RunID, "lab"); !strings.Contains(rec.LastError, "verify: analyser queue stuck") {
					t.Errorf("lab's error %q", rec.LastError)
				}
			}
		})
	}
}
