package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
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
