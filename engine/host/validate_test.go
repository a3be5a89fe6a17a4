package host_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/graphs"
)

func TestValidateNodes(t *testing.T) {
	h := newHost(t, hostOpts(t))
	g := &graphs.Graph{Dir: t.TempDir(), Nodes: []*graphs.Node{
		{ID: "ad", Kind: graphs.KindInfrastructure, Plugin: "exec", With: map[string]any{"restore": []any{"true"}}, Pos: graphs.Position{Line: 5, Column: 5}},
		{ID: "web", Kind: graphs.KindApplication, Plugin: "http", With: map[string]any{"url": "gopher://x", "statsu": 200}, Pos: graphs.Position{Line: 9, Column: 5}},
		{ID: "gate", Kind: graphs.KindData, Plugin: "manual", Pos: graphs.Position{Line: 12, Column: 5}},
		{ID: "lis", Kind: graphs.KindApplication, Plugin: "lab-vendor", Pos: graphs.Position{Line: 14, Column: 5}},
	}}
	got := host.ValidateNodes(ctxT(t, 30*time.Second), h, g)
	want := []string{
		`9:5: node "web": with.statsu: unknown field`,
		`14:5: node "lis": plugin "lab-vendor" could not validate`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems = %v, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].String(), w) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i].String(), w)
		}
	}
}
