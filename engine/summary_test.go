package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// TestLiveETAPluginCap: the ETA a run's events carry counts a plugin's
// max_parallel the same way.
func TestLiveETAPluginCap(t *testing.T) {
	dir := t.TempDir()
	src := "version: 1\nname: cap\nplugins:\n  lab-vendor: {path: ./lab, max_parallel: 2}\nnodes:\n"
	for _, id := range []string{"r1", "r2", "r3", "r4", "r5", "r6"} {
		src += "  - {id: " + id + ", kind: data, plugin: lab-vendor, estimate: 1h}\n"
	}
	g := enginetest.MustGraph(t, dir, src)
	st := enginetest.MustStore(t, dir)
	var first time.Duration = -1
	e := engine.New(st, &enginetest.FakeHost{}, engine.Options{Parallelism: 8, OnEvent: func(ev engine.Event) {
		if first < 0 && ev.Type != engine.EventNodeLog && ev.Type != engine.EventNodeProgress {
			first = ev.ETA
		}
	}})
	if res, err := e.Start(context.Background(), g); err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v %v", res, err)
	}
	if first != 3*time.Hour {
		t.Errorf("first event's ETA = %v, want 3h (6h of work, 2 at a time)", first)
	}
}

func TestRedactor(t *testing.T) {
	r := engine.NewRedactor()
	r.Add("s3cr3t")
	r.Add("s3cr3t-longer")
	r.Add("ab") // too short to be treated as a secret
	tests := []struct{ in, want string }{
		{"token s3cr3t-longer here", "token [redacted] here"},
		{"pw=s3cr3t;pw2=s3cr3t", "pw=[redacted];pw2=[redacted]"},
		{"ab stays", "ab stays"},
	}
	for _, tc := range tests {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLiveETAIsStatusETA: the ETA a run's events carry (the live bar) is
// status's: a chain of three 1h steps takes 3h whatever the parallelism.
func TestLiveETAIsStatusETA(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: chain
nodes:
  - {id: a, kind: infrastructure, plugin: noop, estimate: 1h}
  - {id: b, kind: application, plugin: noop, depends_on: [a], estimate: 1h}
  - {id: c, kind: application, plugin: noop, depends_on: [b], estimate: 1h}
`)
	st := enginetest.MustStore(t, dir)
	var first time.Duration = -1
	e := engine.New(st, &enginetest.FakeHost{}, engine.Options{Parallelism: 8, OnEvent: func(ev engine.Event) {
		if first < 0 && ev.Type == engine.EventRunStarted {
			first = ev.ETA
		}
	}})
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.Run(res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var pending []state.NodeRecord
	for _, n := range g.Nodes {
		pending = append(pending, state.NodeRecord{ID: n.ID, State: state.NodePending})
	}
	run.Status = state.RunRunning
	want := view.New(view.Input{Run: run, Graph: g, Nodes: pending, Live: true}).ETA
	if first != want || want != 3*time.Hour {
		t.Errorf("live ETA at start = %v, status's ETA for the same records = %v; want both 3h", first, want)
	}
}
