package view

import (
	"reflect"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

var t0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func TestBlockedBy(t *testing.T) {
	// a and d fail; b needs a; c needs b and d; e needs c; f needs e and
	// the healthy g; h fails after a (marked, say) and i needs h.
	deps := map[string][]string{"b": {"a"}, "c": {"b", "d"}, "e": {"c"}, "f": {"e", "g"}, "h": {"a"}, "i": {"h"}}
	states := map[string]state.NodeState{"a": "failed", "d": "failed", "g": "succeeded", "b": "blocked", "c": "blocked",
		"e": "blocked", "f": "blocked", "h": "failed", "i": "blocked"}
	g := &graphs.Graph{Name: "b"}
	var recs []state.NodeRecord
	for _, id := range []string{"a", "d", "g", "b", "c", "e", "f", "h", "i"} {
		g.Nodes = append(g.Nodes, &graphs.Node{ID: id, Kind: graphs.KindApplication, DependsOn: deps[id]})
		recs = append(recs, state.NodeRecord{ID: id, State: states[id]})
	}
	m := New(Input{Run: state.Run{ID: "r", Status: state.RunFailed}, Nodes: recs, Graph: g, Now: t0})
	want := map[string][]string{"b": {"a"}, "c": {"a", "d"}, "e": {"a", "d"}, "f": {"a", "d"}, "i": {"h"}}
	for _, n := range m.Nodes {
		if !reflect.DeepEqual(n.BlockedBy, want[n.ID]) {
			t.Errorf("%s blocked by %v; want %v", n.ID, n.BlockedBy, want[n.ID])
		}
	}
	blocks := map[string][]string{}
	for _, f := range m.Failures {
		blocks[f.ID] = f.Blocks
	}
	if want := map[string][]string{"a": {"b", "c", "e", "f"}, "d": {"c", "e", "f"}, "h": {"i"}}; !reflect.DeepEqual(blocks, want) {
		t.Errorf("failures block %v; want %v", blocks, want)
	}
}

// TestPercentOfNothing: 0 of 0 is 0 %, in every view.
func TestPercentOfNothing(t *testing.T) {
	m := New(Input{Run: state.Run{ID: "empty", Status: state.RunFailed}, Now: t0})
	if m.Percent != 0 || Percent(0, 0) != 0 || m.Summary().Percent != 0 {
		t.Errorf("percent of an empty run = %v; want 0", m.Percent)
	}
}
