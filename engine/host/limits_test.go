package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// TestOutputLimits: a step whose outputs pass the graph's limits fails with
// an error naming the node, the key and the size, and returns no outputs.
func TestOutputLimits(t *testing.T) {
	big := strings.Repeat("x", 70<<10)
	many := map[string]any{"a": "1", "b": "2", "c": "3", "d": "4"}
	tests := []struct {
		name    string
		limits  graphs.Limits
		outputs map[string]any
		want    []string // in the error; nil: succeeded
	}{
		{"within the defaults", graphs.Limits{}, map[string]any{"k": strings.Repeat("y", 60<<10)}, nil},
		{"value over the default", graphs.Limits{}, map[string]any{"dump": big}, []string{`node "n"`, `output "dump" is 71680 bytes`, "limits.output_value (64KiB)", "nothing stored"}},
		{"too many keys", graphs.Limits{OutputKeys: 3}, many, []string{`node "n"`, "over limits.output_keys (3)"}},
		{"node total", graphs.Limits{NodeOutputs: 100 << 10}, map[string]any{"a": big[:60<<10], "b": big[:60<<10]}, []string{`node "n"`, "over limits.node_outputs (100KiB)"}},
		{"raised limit", graphs.Limits{OutputValue: 1 << 20}, map[string]any{"dump": big}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := hostOpts(t)
			opts.Limits = tt.limits
			h := newHost(t, opts)
			res, err := h.Restore(ctxT(t, 30*time.Second), req("noop", "n", map[string]any{"outputs": tt.outputs}), nil)
			if err != nil {
				t.Fatalf("Restore: %v (an oversized output is the step's failure, not the plugin's)", err)
			}
			if tt.want == nil {
				if res.Status != step.Succeeded || len(res.Outputs) != len(tt.outputs) {
					t.Fatalf("result = %s %q with %d outputs, want succeeded with %d", res.Status, res.Message, len(res.Outputs), len(tt.outputs))
				}
				return
			}
			if res.Status != step.Failed || len(res.Outputs) != 0 {
				t.Fatalf("result = %s with %d outputs, want failed with none", res.Status, len(res.Outputs))
			}
			for _, w := range tt.want {
				if !strings.Contains(res.Message, w) {
					t.Errorf("message %q lacks %q", res.Message, w)
				}
			}
		})
	}
}
