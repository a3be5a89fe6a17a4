package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestGraphCacheFetchesOnce: steps of a new graph claimed at once by an
// agent fetch and parse the graph once, not once each (every get returns
// the same parsed graph); a graph not published is an error, and is tried
// again by the next get once it is. The parsed graphs are kept while in
// use, and by nothing here let go (parsedGraphs): the graph is one no
// other test, nor an earlier run of this one (go test -count=N), has
// parsed.
func TestGraphCacheFetchesOnce(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("gcache")
	g := graphNamed(t, fmt.Sprintf("gcache-%d", graphSeq.Add(1)), 2000)
	var parses atomic.Int32
	setHooks(t, nil, func(h string) {
		if h == g.Hash() {
			parses.Add(1)
		}
	})
	gc := &graphCache{cli: cli, k: k}
	ctx := context.Background()
	if _, err := gc.get(ctx, g.Hash(), g.File); err == nil || !strings.Contains(err.Error(), "not published") {
		t.Fatalf("unpublished graph: %v", err)
	}
	if n := parses.Load(); n != 0 {
		t.Fatalf("parsed %d times before it was published", n)
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
	if n := parses.Load(); n != 1 {
		t.Fatalf("fetched and parsed %d times, want once", n)
	}
}

// TestGraphPublishedCompressed: a graph is published compressed (its keys
// hold a fraction of its source) and fetched back whole; one published
// plain, as earlier versions did, still reads; a compressed value that
// grows past a graph file's limit is refused without reading it all.
func TestGraphPublishedCompressed(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("gzip")
	g := graphOf(t, 2000)
	ctx := context.Background()
	if err := publishGraph(ctx, cli, k, g, g.Hash()); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, k.Graph(g.Hash()), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, kv := range resp.Kvs {
		stored += len(kv.Value)
	}
	if stored*4 > len(g.Source) {
		t.Errorf("published in %d bytes for a source of %d: not compressed", stored, len(g.Source))
	}
	got, err := (&graphCache{cli: cli, k: k}).fetch(ctx, g.Hash(), g.File)
	if err != nil || len(got.Nodes) != 2000 {
		t.Fatalf("fetch: %v", err)
	}

	// Published plain, by hand, under another graph's hash.
	plain := []byte("version: 1\nname: plain\nnodes:\n  - {id: a, kind: application, plugin: noop}\n")
	pg, err := graphs.Parse("plain.yaml", plain)
	if err != nil {
		t.Fatal(err)
	}
	cli.Put(ctx, k.Graph(pg.Hash())+"000000", string(plain))
	cli.Put(ctx, k.Graph(pg.Hash())+"count", "1\nplain.yaml")
	if got, err := (&graphCache{cli: cli, k: k}).fetch(ctx, pg.Hash(), "plain.yaml"); err != nil || len(got.Nodes) != 1 {
		t.Fatalf("graph published plain: %v", err)
	}

	// A bomb: 65 MiB of zeros, compressed.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zeros := make([]byte, 1<<20)
	for range 65 {
		zw.Write(zeros)
	}
	zw.Close()
	const hash = "0000000000000000000000000000000000000000000000000000000000000000"
	cli.Put(ctx, k.Graph(hash)+"000000", bomb.String())
	cli.Put(ctx, k.Graph(hash)+"count", "1\nbomb.yaml")
	if _, err := (&graphCache{cli: cli, k: k}).fetch(ctx, hash, "bomb.yaml"); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("a compressed graph over the limit: %v", err)
	}
}

// graphSeq numbers the graphs of graphNamed that must be new to this
// process.
var graphSeq atomic.Int64

// graphOf parses a graph of n independent noop nodes.
func graphOf(t *testing.T, n int) *graphs.Graph {
	t.Helper()
	return graphNamed(t, "g", n)
}

// graphNamed parses a graph named name of n independent noop nodes (its
// hash is its source's: graphs of different names have different hashes).
func graphNamed(t *testing.T, name string, n int) *graphs.Graph {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nname: " + name + "\nnodes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop}\n", i)
	}
	g, err := graphs.Parse("graph.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}
