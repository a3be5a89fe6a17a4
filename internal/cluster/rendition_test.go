package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// published returns the value of the count key of graph hash and the
// published bytes, unpacked.
func published(t *testing.T, cli *clientv3.Client, k Keys, hash string) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.Get(ctx, k.Graph(hash), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	count := ""
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), "/count") {
			count = string(kv.Value)
			continue
		}
		buf.Write(kv.Value)
	}
	body, err := unpackGraph(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return count, body
}

func gzipped(t *testing.T, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestGraphPublishedRendition: a YAML graph is published as its JSON
// rendition, marked in the count key with the rendition's hash, and read
// back under its file name with its source's hash (the rendition's
// positions are dropped, and so are those of the plugins published for
// the early start: the host started from them is the graph's). A
// rendition changed in etcd is refused.
func TestGraphPublishedRendition(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("rend")
	ctx := context.Background()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: rend\nplugins:\n  pharmacy: {path: bin/pharmacy, max_parallel: 2}\nnodes:\n")
	b.WriteString("  - {id: first, kind: data, plugin: pharmacy, with: {x: 0x10, y: .5}}\n")
	for i := range 2000 {
		b.WriteString("  - {id: n" + strconv.Itoa(i) + ", kind: application, plugin: noop, depends_on: [first]}\n")
	}
	path := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	hash := g.Hash()
	if err := publishGraph(ctx, cli, k, g, hash); err != nil {
		t.Fatal(err)
	}
	count, body := published(t, cli, k, hash)
	first, file, _ := strings.Cut(count, "\n")
	f := strings.Fields(first)
	if len(f) != 3 || f[1] != "json" || len(f[2]) != 64 || file != path {
		t.Fatalf("count key %q: want \"N json SHA256\\nFILE\"", count)
	}
	if body[0] != '{' {
		t.Fatalf("published %.40q…: not the JSON rendition", body)
	}
	got, err := (&graphCache{cli: cli, k: k}).fetch(ctx, hash, path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != hash || got.File != path || got.Dir != dir || len(got.Nodes) != 2001 || !bytes.Equal(got.Source, body) {
		t.Fatalf("fetched: hash %s file %q dir %q, %d nodes; want %s %q %q, 2001", got.Hash(), got.File, got.Dir, len(got.Nodes), hash, path, dir)
	}
	if w := got.Nodes[0].With; w["x"] != 16 || w["y"] != 0.5 {
		t.Errorf("with: %v", w)
	}
	resp, err := cli.Get(ctx, warmKey(k, hash))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("warm spec: %v", err)
	}
	var ws warmSpec
	if err := json.Unmarshal(resp.Kvs[0].Value, &ws); err != nil {
		t.Fatal(err)
	}
	if !sameHost(ws.skeleton(), got) {
		t.Errorf("the host of the warm spec (%+v) is not the rendition's (%+v)", ws.Plugins, got.Plugins)
	}
	if g.Plugins["pharmacy"].Pos.Line == 0 {
		t.Error("publishing dropped the positions of the coordinator's graph")
	}

	// Tampered: a node's kind changed, still a valid graph.
	bad := bytes.Replace(body, []byte(`"application"`), []byte(`"data"`), 1)
	if _, err := cli.Put(ctx, k.Graph(hash)+"000000", gzipped(t, bad)); err != nil {
		t.Fatal(err)
	}
	if _, err := (&graphCache{cli: cli, k: k}).fetch(ctx, hash, path); err == nil || !strings.Contains(err.Error(), "rendition hash is") {
		t.Fatalf("tampered rendition: %v", err)
	}
}

// TestGraphPublishedSource: a graph published the earlier way (its source,
// compressed or plain, and a count key of the chunks alone) still reads; so
// does a JSON graph, and one that has no rendition, both published as
// their source; a count key of a form this agent does not know is refused.
func TestGraphPublishedSource(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("srcs")
	ctx := context.Background()
	src := []byte("version: 1\nname: old\nnodes:\n  - {id: a, kind: application, plugin: noop}\n  - {id: b, kind: application, plugin: noop, depends_on: [a]}\n")
	g, err := graphs.Parse("old.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	hash := g.Hash()
	cli.Put(ctx, k.Graph(hash)+"000000", gzipped(t, src))
	cli.Put(ctx, k.Graph(hash)+"count", "1\nold.yaml")
	got, err := (&graphCache{cli: cli, k: k}).fetch(ctx, hash, "old.yaml")
	if err != nil || len(got.Nodes) != 2 || !bytes.Equal(got.Source, src) || got.Hash() != hash || got.Nodes[1].Pos.Line != 5 {
		t.Fatalf("graph published compressed the earlier way: %v", err)
	}

	for _, tc := range []struct{ file, src string }{
		{"g.json", `{"version": 1, "name": "json", "nodes": [{"id": "a", "kind": "data", "plugin": "noop"}]}`},
		{"inf.yaml", "version: 1\nname: inf\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {x: .inf}}\n"},
	} {
		g, err := graphs.Parse(tc.file, []byte(tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if err := publishGraph(ctx, cli, k, g, g.Hash()); err != nil {
			t.Fatal(err)
		}
		count, body := published(t, cli, k, g.Hash())
		if count != "1\n"+tc.file || string(body) != tc.src {
			t.Errorf("%s: published %q with count %q, want the source and \"1\\n%s\"", tc.file, body, count, tc.file)
		}
		got, err := (&graphCache{cli: cli, k: k}).fetch(ctx, g.Hash(), tc.file)
		if err != nil || got.Hash() != g.Hash() || len(got.Nodes) != 1 {
			t.Errorf("%s: %v", tc.file, err)
		}
	}

	cli.Put(ctx, k.Graph(hash)+"count", "1 yaml2 "+strings.Repeat("ab", 32)+"\nold.yaml")
	if _, err := (&graphCache{cli: cli, k: k}).fetch(ctx, hash, "old.yaml"); err == nil || !strings.Contains(err.Error(), "does not read") {
		t.Fatalf("unknown form: %v", err)
	}
}

// TestParseCount: the count key's first line.
func TestParseCount(t *testing.T) {
	sum := strings.Repeat("0f", 32)
	for val, want := range map[string]string{
		"3\nf.yaml":                      "3 ",
		"3":                              "3 ",
		"12 json " + sum + "\nf.yaml":    "12 " + sum,
		"":                               "error",
		"-1\nf":                          "error",
		"x\nf":                           "error",
		"3 json abc\nf":                  "error",
		"3 json " + strings.ToUpper(sum): "error",
		"3 gz " + sum:                    "error",
	} {
		n, d, err := parseCount(val)
		got := strconv.Itoa(n) + " " + d
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parseCount(%q) = %q (%v), want %q", val, got, err, want)
		}
	}
}
