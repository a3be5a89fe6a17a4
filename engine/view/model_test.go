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

// TestActiveTime: what a run took is the wall time of its attempts'
// union across sessions, not its span; a gate's open wait is not work.
func TestActiveTime(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	g := &graphs.Graph{Name: "a", Nodes: []*graphs.Node{
		{ID: "a", Kind: graphs.KindInfrastructure}, {ID: "b", Kind: graphs.KindInfrastructure},
		{ID: "c", Kind: graphs.KindApplication, DependsOn: []string{"a"}}, {ID: "gate", Kind: graphs.KindData, DependsOn: []string{"c"}},
	}}
	recs := []state.NodeRecord{
		{ID: "a", State: state.NodeSucceeded, History: []state.Attempt{{N: 1, Started: at(0), Ended: at(10), Result: state.NodeSucceeded}}},
		{ID: "b", State: state.NodeSucceeded, History: []state.Attempt{{N: 1, Started: at(5), Ended: at(15), Result: state.NodeSucceeded}}},
		// the process died at 15; resumed two days later
		{ID: "c", State: state.NodeSucceeded, History: []state.Attempt{{N: 1, Started: at(2880), Ended: at(2890), Result: state.NodeSucceeded}}},
		{ID: "gate", State: state.NodeWaiting, History: []state.Attempt{{N: 1, Started: at(2890), Result: state.NodeWaiting}}},
	}
	m := New(Input{Run: state.Run{ID: "r", Status: state.RunParked}, Nodes: recs, Graph: g, Now: at(3000)})
	if m.Active != 25*time.Minute {
		t.Errorf("active = %v; want 25m (0–15 and 2880–2890)", m.Active)
	}
	if !m.Start.Equal(at(0)) || !m.End.Equal(at(3000)) {
		t.Errorf("span = %v .. %v; want %v .. %v (the gate waits until now)", m.Start, m.End, at(0), at(3000))
	}
}

// TestVitalIsEffective: the share of vital services back counts the
// nodes whose effective criticality is vital, the same nodes as the vital
// row of the criticality table.
func TestVitalIsEffective(t *testing.T) {
	g := &graphs.Graph{Name: "v", Nodes: []*graphs.Node{
		{ID: "ad", Kind: graphs.KindInfrastructure}, // normal, but dpi needs it: effectively vital
		{ID: "dpi", Kind: graphs.KindApplication, Criticality: graphs.CriticalityVital, DependsOn: []string{"ad"}},
		{ID: "print", Kind: graphs.KindApplication},
	}}
	recs := []state.NodeRecord{{ID: "ad", State: state.NodeSucceeded}, {ID: "dpi", State: state.NodeFailed}, {ID: "print", State: state.NodeSucceeded}}
	m := New(Input{Run: state.Run{ID: "r", Status: state.RunFailed}, Nodes: recs, Graph: g, Now: t0})
	if m.Vital.Total != 2 || m.Vital.Done != 1 {
		t.Errorf("vital %d of %d; want 1 of 2 (ad is effectively vital)", m.Vital.Done, m.Vital.Total)
	}
	if b := m.ByCriticality[0]; b.Key != "vital" || b.Total != m.Vital.Total || b.Done != m.Vital.Done {
		t.Errorf("vital row %+v differs from the vital share %+v", b, m.Vital)
	}
}
