package engine_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

const fourSlow = `version: 1
name: slow
nodes:
  - {id: s1, kind: infrastructure, plugin: noop}
  - {id: s2, kind: infrastructure, plugin: noop}
  - {id: after1, kind: application, plugin: noop, depends_on: [s1]}
  - {id: after2, kind: application, plugin: noop, depends_on: [s2]}
`

func TestInterrupts(t *testing.T) {
	tests := []struct {
		name      string
		second    bool
		wantSlow  state.NodeState // state of s1, s2 afterwards
		wantEntry string
	}{
		{"first: running steps finish", false, state.NodeSucceeded, "succeeded s1"},
		{"second: running steps cancelled", true, state.NodePending, "interrupted s1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := enginetest.MustStore(t, dir)
			started := make(chan struct{}, 2)
			var cancelledSteps atomic.Int32
			h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
				if strings.HasPrefix(req.NodeID, "s") {
					started <- struct{}{}
					select {
					case <-time.After(300 * time.Millisecond):
					case <-ctx.Done():
						cancelledSteps.Add(1)
						return step.Result{}, ctx.Err()
					}
				}
				return step.Result{Status: step.Succeeded}, nil
			}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e := engine.New(st, h, engine.Options{})
			go func() {
				<-started
				<-started
				e.Drain()
				if tc.second {
					cancel()
				}
			}()
			res, err := e.Start(ctx, enginetest.MustGraph(t, dir, fourSlow))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != state.RunInterrupted {
				t.Errorf("status %s, want interrupted", res.Status)
			}
			states := enginetest.NodeStates(t, st, res.RunID)
			for _, id := range []string{"s1", "s2"} {
				if states[id] != tc.wantSlow {
					t.Errorf("%s: %s, want %s", id, states[id], tc.wantSlow)
				}
			}
			for _, id := range []string{"after1", "after2"} {
				if states[id] != state.NodePending {
					t.Errorf("%s: %s, want pending (nothing new starts)", id, states[id])
				}
			}
			if tc.second && cancelledSteps.Load() != 2 {
				t.Errorf("%d steps saw the cancellation, want 2", cancelledSteps.Load())
			}
			types := strings.Join(enginetest.JournalTypes(t, st, res.RunID), "\n")
			if !strings.Contains(types, tc.wantEntry) || !strings.Contains(types, "run-interrupted") {
				t.Errorf("journal lacks %q or run-interrupted:\n%s", tc.wantEntry, types)
			}
			run, _ := st.Run(res.RunID)
			if run.Status != state.RunInterrupted {
				t.Errorf("stored status %s", run.Status)
			}
			// Resume finishes the run.
			res, err = engine.New(st, &enginetest.FakeHost{}, engine.Options{}).Resume(context.Background(), "", nil)
			if err != nil || res.Status != state.RunSucceeded {
				t.Errorf("resume: %+v %v", res, err)
			}
		})
	}
}

// TestSecretsNeverPersisted resolves ${env:…} for a step that repeats the
// secret in its log lines, outputs, message and error, then searches the
// state file and the log file for it.
// TestDrainWithArmedNodes stops a run of short steps, where nodes are armed
// ahead of free slots: those not started go back to pending, none is left
// running, and a resume runs each remaining node exactly once.
func TestDrainWithArmedNodes(t *testing.T) {
	dir := t.TempDir()
	st := enginetest.MustStore(t, dir)
	g := enginetest.MustGraph(t, dir, enginetest.ChainGraph(300, false))
	h := &enginetest.FakeHost{}
	var e *engine.Engine
	var finished atomic.Int32
	e = engine.New(st, h, engine.Options{OnEvent: func(ev engine.Event) {
		if ev.Type == engine.EventNodeFinished && finished.Add(1) == 100 {
			go e.Drain()
		}
	}})
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunInterrupted {
		t.Fatalf("status %s, want interrupted", res.Status)
	}
	counts := map[state.NodeState]int{}
	for _, s := range enginetest.NodeStates(t, st, res.RunID) {
		counts[s]++
	}
	if counts[state.NodeRunning] != 0 || counts[state.NodeSucceeded]+counts[state.NodePending] != 300 || counts[state.NodePending] == 0 {
		t.Fatalf("states after drain: %v", counts)
	}
	unarmed := 0
	for _, e := range enginetest.JournalTypes(t, st, res.RunID) {
		if strings.HasPrefix(e, "reset ") {
			unarmed++
		}
	}
	if unarmed == 0 {
		t.Error("no armed node was put back to pending: the test did not exercise arming ahead")
	}
	if n := len(h.Restored()); n != counts[state.NodeSucceeded] {
		t.Errorf("%d restores for %d succeeded nodes", n, counts[state.NodeSucceeded])
	}
	h2 := &enginetest.FakeHost{}
	res, err = engine.New(st, h2, engine.Options{}).Resume(context.Background(), res.RunID, nil)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume: %+v %v", res, err)
	}
	seen := map[string]bool{}
	for _, id := range append(h.Restored(), h2.Restored()...) {
		if seen[id] {
			t.Errorf("node %s restored twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 300 {
		t.Errorf("%d nodes restored, want 300", len(seen))
	}
	if rep, err := st.Verify(res.RunID); err != nil || !rep.OK {
		t.Errorf("verify: %+v %v", rep, err)
	}
}
