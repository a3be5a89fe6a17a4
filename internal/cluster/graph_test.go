package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestGraphCacheFetchesOnce: steps of a new graph claimed at once by an
// agent fetch and parse the graph once, not once each (every get returns
// the same parsed graph); a graph not published is an error, and is tried
// again by the next get once it is.
func TestGraphCacheFetchesOnce(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("gcache")
	var b strings.Builder
	b.WriteString("version: 1\nname: g\nnodes:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop}\n", i)
	}
	g, err := graphs.Parse("graph.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	gc := &graphCache{cli: cli, k: k}
	ctx := context.Background()
	if _, err := gc.get(ctx, g.Hash(), g.File); err == nil || !strings.Contains(err.Error(), "not published") {
		t.Fatalf("unpublished graph: %v", err)
	}
	if err := publishGraph(ctx, cli, k, g, g.Hash()); err != nil {
		t.Fatal(err)
	}
	got := make([]*graphs.Graph, 64)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gr, err := gc.get(ctx, g.Hash(), g.File)
			if err != nil {
				t.Error(err)
			}
			got[i] = gr
		}()
	}
	wg.Wait()
	for i, gr := range got {
		if gr == nil || gr != got[0] {
			t.Fatalf("get %d returned another parse of the graph (%p, first %p): fetched more than once", i, gr, got[0])
		}
	}
	if len(got[0].Nodes) != 2000 {
		t.Fatalf("nodes: %d", len(got[0].Nodes))
	}
}
