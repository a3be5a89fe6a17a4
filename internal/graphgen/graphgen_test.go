package graphgen

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/reprise-si/reprise/graphs"
)

func TestGenerateDeterministicAndAcyclic(t *testing.T) {
	for _, plugin := range []string{"noop", "exec"} {
		a := Generate(Options{Nodes: 2000, Edges: 4000, Seed: 7, Plugin: plugin})
		b := Generate(Options{Nodes: 2000, Edges: 4000, Seed: 7, Plugin: plugin})
		var ja, jb bytes.Buffer
		if err := a.WriteJSON(&ja); err != nil {
			t.Fatal(err)
		}
		if err := b.WriteJSON(&jb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ja.Bytes(), jb.Bytes()) {
			t.Fatal("same seed, different graphs")
		}
		if !json.Valid(ja.Bytes()) {
			t.Fatal("invalid JSON")
		}
		if e := a.Edges(); e < 3600 || e > 4400 {
			t.Errorf("%d edges, want about 4000", e)
		}
		index := map[string]int{}
		kinds := map[string]int{}
		for i, n := range a.Nodes {
			index[n.ID] = i
			kinds[n.Kind]++
		}
		for i, n := range a.Nodes {
			for _, d := range append(append([]string{}, n.DependsOn...), n.Between...) {
				if j, ok := index[d]; !ok || j >= i {
					t.Fatalf("node %s depends on %s, not an earlier node", n.ID, d)
				}
			}
			if n.Kind == "interface" && (len(n.Between) != 2 || n.Between[0] == n.Between[1]) {
				t.Fatalf("interface %s has ends %v", n.ID, n.Between)
			}
			if plugin == "exec" && n.With == nil {
				t.Fatalf("exec node %s without with", n.ID)
			}
		}
		if len(kinds) != 4 {
			t.Errorf("kinds: %v", kinds)
		}
	}
	if c := Generate(Options{Nodes: 2000, Edges: 4000, Seed: 8}); c.Nodes[1999].DependsOn == nil && c.Nodes[1999].Between == nil {
		t.Error("last node has no dependencies")
	}
}

// TestGenerateZones: a graph split in trust zones parses (dependencies
// never reach a less trusted zone; interfaces sit in the less trusted of
// their ends) and uses every zone.
func TestGenerateZones(t *testing.T) {
	doc := Generate(Options{Nodes: 3000, Zones: 4})
	var buf bytes.Buffer
	if err := doc.WriteYAML(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Parse("zoned.yaml", buf.Bytes())
	if err != nil {
		t.Fatalf("a zoned graph does not parse: %v", err)
	}
	used := map[string]int{}
	for _, n := range g.Nodes {
		used[n.Zone]++
	}
	if len(g.Zones) != 4 || len(used) != 4 {
		t.Errorf("zones %v, nodes by zone %v", g.Zones, used)
	}
}
