package view_test

import (
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/enginetest"
)

func TestSummarize(t *testing.T) {
	g := enginetest.MustGraph(t, t.TempDir(), `version: 1
name: sum
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, estimate: 1h}
  - {id: pacs, kind: application, plugin: noop, criticality: vital, depends_on: [ad], estimate: 2h}
  - {id: lab, kind: application, plugin: noop, depends_on: [ad], estimate: 30m}
  - {id: reentry, kind: data, plugin: manual, depends_on: [lab]}
`)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	run := state.Run{ID: "r1", GraphName: "sum", Status: state.RunRunning, Options: state.RunOptions{Parallelism: 8}}
	recs := []state.NodeRecord{
		{ID: "ad", State: state.NodeSucceeded, Attempts: 1, Started: now.Add(-90 * time.Minute), Ended: now.Add(-30 * time.Minute)},
		{ID: "pacs", State: state.NodeRunning, Attempts: 1, Started: now.Add(-30 * time.Minute)},
		{ID: "lab", State: state.NodeFailed, Attempts: 3, LastError: "exit status 1"},
		{ID: "reentry", State: state.NodePending},
	}
	s := view.New(view.Input{Run: run, Graph: g, Nodes: recs, Live: true, Now: now}).Summary()
	if s.Total != 4 || s.Done != 1 || s.Percent != 25 || !s.Live {
		t.Errorf("totals: %+v", s)
	}
	if len(s.Running) != 1 || s.Running[0].ID != "pacs" || s.Running[0].ElapsedSeconds != 1800 {
		t.Errorf("running: %+v", s.Running)
	}
	if len(s.Failures) != 1 || s.Failures[0].LastError != "exit status 1" || s.Failures[0].Attempts != 3 {
		t.Errorf("failures: %+v", s.Failures)
	}
	// ad is infrastructure and inherits vital from pacs.
	tests := []struct {
		name        string
		got         []view.SummaryBreakdown
		key         string
		total, done int
	}{
		{"kind infrastructure", s.ByKind, "infrastructure", 1, 1},
		{"kind application", s.ByKind, "application", 2, 0},
		{"criticality vital", s.ByCriticality, "vital", 2, 1},
		{"criticality normal", s.ByCriticality, "normal", 2, 0},
	}
	for _, tc := range tests {
		found := false
		for _, b := range tc.got {
			if b.Key == tc.key {
				found = true
				if b.Total != tc.total || b.Done != tc.done {
					t.Errorf("%s: %d/%d, want %d/%d", tc.name, b.Done, b.Total, tc.done, tc.total)
				}
			}
		}
		if !found {
			t.Errorf("%s: missing", tc.name)
		}
	}
	// Left: pacs 1h30 (2h estimate, 30m elapsed) on its own path; lab 30m
	// then reentry (no estimate: the measured mean, 1h) = 1h30.
	if want := (90 * time.Minute).Seconds(); s.ETASeconds != want {
		t.Errorf("ETA %vs, want %vs", s.ETASeconds, want)
	}
}

// TestSummarizeETAPluginCap: six 1h lab re-entries through a plugin capped
// at 2 take 3h however many slots the run has.
func TestSummarizeETAPluginCap(t *testing.T) {
	src := "version: 1\nname: cap\nplugins:\n  lab-vendor: {path: ./lab, max_parallel: 2}\nnodes:\n"
	var recs []state.NodeRecord
	for _, id := range []string{"r1", "r2", "r3", "r4", "r5", "r6"} {
		src += "  - {id: " + id + ", kind: data, plugin: lab-vendor, estimate: 1h}\n"
		recs = append(recs, state.NodeRecord{ID: id, State: state.NodePending})
	}
	g := enginetest.MustGraph(t, t.TempDir(), src)
	run := state.Run{ID: "r1", GraphName: "cap", Status: state.RunRunning, Options: state.RunOptions{Parallelism: 8}}
	s := view.New(view.Input{Run: run, Graph: g, Nodes: recs, Live: true, Now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}).Summary()
	if want := (3 * time.Hour).Seconds(); s.ETASeconds != want {
		t.Errorf("ETA %vs, want %vs (6h of work, 2 at a time)", s.ETASeconds, want)
	}
}
