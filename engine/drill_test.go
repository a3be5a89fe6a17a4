package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// TestDrill: a drill runs the real plan with every request saying so; its
// clean-up is recorded (who, when, what) and journaled, only for drills;
// once cleaned up it is no longer resumable, nor picked as the run to
// resume.
func TestDrill(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: drill
defaults: {retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop}
  - {id: dpi, kind: application, plugin: noop, depends_on: [ad]}
  - {id: pmsi, kind: application, plugin: noop, depends_on: [dpi]}
`)
	st := enginetest.MustStore(t, dir)
	var mu sync.Mutex
	drillFlags := map[string]bool{}
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		mu.Lock()
		drillFlags[req.NodeID] = req.Drill
		mu.Unlock()
		if req.NodeID == "pmsi" {
			return step.Result{Status: step.Failed, Message: "coding software licence server unreachable"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	now := time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)
	ctx := context.Background()

	// A real run first: not a drill, its clean-up cannot be recorded.
	real, err := engine.New(st, h, engine.Options{Now: func() time.Time { return now }}).Start(ctx, g)
	if err != nil || real.Status != state.RunFailed {
		t.Fatalf("real run: %+v %v", real, err)
	}
	if drillFlags["ad"] {
		t.Errorf("a real run's requests say drill")
	}
	e := engine.New(st, h, engine.Options{Drill: true, Now: func() time.Time { return now.Add(time.Hour) }})
	if err := e.RecordCleanup(ctx, real.RunID, "M. Martin", "nothing"); !errors.Is(err, engine.ErrNotDrill) {
		t.Errorf("clean-up of a real run: %v, want ErrNotDrill", err)
	}

	res, err := e.Start(ctx, g)
	if err != nil || res.Status != state.RunFailed {
		t.Fatalf("drill: %+v %v", res, err)
	}
	for _, id := range []string{"ad", "dpi", "pmsi"} {
		if !drillFlags[id] {
			t.Errorf("node %s: request without Drill in a drill run", id)
		}
	}
	run, err := st.Run(res.RunID)
	if err != nil || !run.Options.Drill || run.Cleanup != nil {
		t.Fatalf("drill's run record: %+v %v", run, err)
	}
	if latest, err := st.LatestUnfinished(); err != nil || latest.ID != res.RunID {
		t.Fatalf("latest unfinished = %v, %v; want the failed drill", latest.ID, err)
	}

	for _, bad := range []struct{ by, note string }{{"", "VMs reverted"}, {"M. Martin", " "}} {
		if err := e.RecordCleanup(ctx, res.RunID, bad.by, bad.note); err == nil {
			t.Errorf("clean-up by %q note %q accepted", bad.by, bad.note)
		}
	}
	note := "test VMs reverted to their snapshots, exercise DNS zone deleted"
	if err := e.RecordCleanup(ctx, res.RunID, "M. Martin", note); err != nil {
		t.Fatalf("record clean-up: %v", err)
	}
	run, err = st.Run(res.RunID)
	if err != nil || run.Cleanup == nil || run.Cleanup.By != "M. Martin" || run.Cleanup.Note != note ||
		!run.Cleanup.At.Equal(now.Add(time.Hour)) {
		t.Fatalf("clean-up record: %+v %v", run.Cleanup, err)
	}
	var entry *state.Entry
	st.Journal(res.RunID, 0, func(en state.Entry) error {
		if en.Type == state.EntryCleanedUp {
			entry = &en
		}
		if en.Type == state.EntryRunStarted && !strings.HasPrefix(en.Message, "drill of drill") {
			t.Errorf("run-started entry %q does not say drill", en.Message)
		}
		return nil
	})
	if entry == nil || entry.By != "M. Martin" || entry.Message != note {
		t.Errorf("cleaned-up entry: %+v", entry)
	}

	// Cleaned up: not resumable, and resume without a run id goes to the
	// real run instead.
	if _, err := e.Resume(ctx, res.RunID, nil); !errors.Is(err, engine.ErrCleanedUp) || !strings.Contains(err.Error(), "M. Martin") {
		t.Errorf("resume of a cleaned-up drill: %v, want ErrCleanedUp naming who", err)
	}
	if _, err := e.ResetNodes(ctx, res.RunID, "pmsi", false, "ops"); !errors.Is(err, engine.ErrCleanedUp) {
		t.Errorf("retry in a cleaned-up drill: %v, want ErrCleanedUp", err)
	}
	if err := e.Mark(ctx, res.RunID, "pmsi", "ops", "coded by hand"); !errors.Is(err, engine.ErrCleanedUp) {
		t.Errorf("mark in a cleaned-up drill: %v, want ErrCleanedUp", err)
	}
	if err := e.Approve(ctx, res.RunID, "pmsi", "ops", "ok"); !errors.Is(err, engine.ErrCleanedUp) {
		t.Errorf("approve in a cleaned-up drill: %v, want ErrCleanedUp", err)
	}
	if latest, err := st.LatestUnfinished(); err != nil || latest.ID != real.RunID {
		t.Errorf("latest unfinished = %v, %v; want the real run %s", latest.ID, err, real.RunID)
	}
}
