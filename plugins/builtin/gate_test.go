package builtin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

func TestManualWaits(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   string
	}{
		{"with a message", map[string]any{"message": "the biologist signed the lab results"}, "waiting for approval: the biologist signed the lab results"},
		{"without", nil, "waiting for approval: node lab-validation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Manual{}).Restore(context.Background(), sdk.NewRequest("lab-validation", tt.config), sdk.NewRecorder().Stream)
			msg, waiting := sdk.IsWaiting(err)
			if !waiting || msg != tt.want {
				t.Errorf("Restore = %v (waiting %v), want waiting %q", err, waiting, tt.want)
			}
		})
	}
	err := (&Manual{}).Restore(context.Background(), sdk.NewRequest("n", map[string]any{"mesage": "typo"}), sdk.NewRecorder().Stream)
	if _, waiting := sdk.IsWaiting(err); err == nil || waiting || !strings.Contains(err.Error(), "mesage") {
		t.Errorf("Restore with an unknown field = %v, want an error naming it", err)
	}
}

func TestNoop(t *testing.T) {
	rec := sdk.NewRecorder()
	req := sdk.NewRequest("milestone", map[string]any{"outputs": map[string]string{"b": "2", "a": "1"}, "delay": "30ms"})
	start := time.Now()
	if err := (&Noop{}).Restore(context.Background(), req, rec.Stream); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("Restore with delay 30ms returned after %s", d)
	}
	if got := rec.Outputs(); len(got) != 2 || got["a"] != "1" || got["b"] != "2" {
		t.Errorf("outputs = %v", got)
	}
	if rec.Message() != "done after 30ms" {
		t.Errorf("message = %q", rec.Message())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (&Noop{}).Restore(ctx, sdk.NewRequest("m", map[string]any{"delay": "1h"}), sdk.NewRecorder().Stream); err == nil {
		t.Error("a cancelled delay succeeded")
	}
	dry := sdk.NewRequest("m", map[string]any{"delay": "1h"})
	dry.DryRun = true
	if err := (&Noop{}).Restore(context.Background(), dry, sdk.NewRecorder().Stream); err != nil {
		t.Errorf("dry run with a delay: %v (want no wait, no error)", err)
	}
	if res, err := (&Noop{}).Check(context.Background(), req); err != nil || res.Restored {
		t.Errorf("Check = %+v, %v; want never restored", res, err)
	}
}
