package graphs

import (
	"testing"
	"time"
)

func TestLimitsAndStartTimeout(t *testing.T) {
	src := "version: 1\nplugins:\n  p: {path: ./x, start_timeout: 45s}\nlimits: {output_value: 128KiB, node_outputs: 4194304, output_keys: 50}\nnodes:\n  - {id: a, kind: data, plugin: p}\n"
	g, err := Parse("g.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Plugins["p"].StartTimeout; got != 45*time.Second {
		t.Errorf("start_timeout = %s, want 45s", got)
	}
	want := Limits{OutputValue: 128 << 10, NodeOutputs: 4 << 20, OutputKeys: 50}
	if g.Limits != want {
		t.Errorf("limits = %+v, want %+v", g.Limits, want)
	}
	if got := (Limits{}).Effective(); got != (Limits{OutputValue: 64 << 10, NodeOutputs: 1 << 20, OutputKeys: 1000}) {
		t.Errorf("defaults = %+v", got)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{{"65536", 65536, true}, {"64KiB", 64 << 10, true}, {"64 KB", 64 << 10, true}, {"1MiB", 1 << 20, true}, {"512B", 512, true},
		{"1GiB", 0, false}, {"KiB", 0, false}, {"-1", 0, false}, {"1.5MiB", 0, false}} {
		got, ok := ParseSize(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
