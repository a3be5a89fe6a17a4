package graphs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func mustLoad(t *testing.T, path string) *Graph {
	t.Helper()
	g, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return g
}

func TestLoadSmall(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	if g.Version != 1 || g.Name != "small" || len(g.Nodes) != 7 {
		t.Fatalf("got version %d name %q %d nodes", g.Version, g.Name, len(g.Nodes))
	}
	if g.Plugins["pacs-vendor"].Path != "./bin/reprise-plugin-pacs" {
		t.Errorf("plugin path: got %q", g.Plugins["pacs-vendor"].Path)
	}
	if !reflect.DeepEqual(g.Defaults, Defaults{Timeout: 30 * time.Minute, Retries: 2, RetryDelay: 30 * time.Second}) {
		t.Errorf("defaults: got %+v", g.Defaults)
	}
	abs, _ := filepath.Abs("testdata")
	if g.File != "testdata/small.yaml" || g.Dir != abs || len(g.Source) == 0 {
		t.Errorf("File %q Dir %q (want %q)", g.File, g.Dir, abs)
	}
	ad, ok := g.Node("ad")
	if !ok || ad.Kind != KindInfrastructure || ad.Plugin != "exec" || ad.Estimate != 4*time.Hour {
		t.Fatalf("node ad: %+v", ad)
	}
	if ad.Pos != (Position{Line: 13, Column: 5}) {
		t.Errorf("ad position: got %+v", ad.Pos)
	}
	if ad.Criticality != CriticalityNormal {
		t.Errorf("default criticality: got %q", ad.Criticality)
	}
	want := map[string]any{"restore": []any{"./scripts/restore-ad.sh"}, "check": []any{"./scripts/check-ad.sh"}}
	if !reflect.DeepEqual(ad.With, want) {
		t.Errorf("with: got %#v", ad.With)
	}
	iface, _ := g.Node("ris-to-pacs")
	if got := iface.Deps(); !reflect.DeepEqual(got, []string{"ris", "pacs"}) {
		t.Errorf("interface deps: got %v", got)
	}
	if got := g.NodeRetries(ad); got != 2 {
		t.Errorf("retries: got %d want 2", got)
	}
	if got := g.NodeTimeout(ad); got != 30*time.Minute {
		t.Errorf("timeout: got %v", got)
	}
	if len(g.Hash()) != 64 {
		t.Errorf("hash: %q", g.Hash())
	}
}

// yamlToJSON converts a YAML fixture to JSON through generic values.
func yamlToJSON(t *testing.T, data []byte) []byte {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestYAMLAndJSONAgree(t *testing.T) {
	data, err := os.ReadFile("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gy, err := Parse("small.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	gj, err := Parse("small.json", yamlToJSON(t, data))
	if err != nil {
		t.Fatal(err)
	}
	if len(gy.Nodes) != len(gj.Nodes) {
		t.Fatalf("nodes: yaml %d json %d", len(gy.Nodes), len(gj.Nodes))
	}
	for i := range gy.Nodes {
		a, b := *gy.Nodes[i], *gj.Nodes[i]
		a.Pos, b.Pos = Position{}, Position{}
		a.KindPos, b.KindPos = Position{}, Position{}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("node %d differs:\nyaml %+v\njson %+v", i, a, b)
		}
	}
	if d := DiffGraphs(gy, gj); len(d.Added)+len(d.Removed)+len(d.Changed) != 0 {
		t.Errorf("diff of the same graph: %+v", d)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want not exist", err)
	}
}

// TestEmptyOptionalFields: an optional field written without a value is
// absent, as a person writing YAML expects.
func TestEmptyOptionalFields(t *testing.T) {
	g := mustParse(t, "e.yaml", "version: 1\nname:\nplugins:\ndefaults:\nnodes:\n  - id: a\n    kind: data\n    plugin: noop\n    depends_on:\n    with:\n    title:\n    estimate:\n    retries:\n    criticality:\n")
	a, _ := g.Node("a")
	if a.DependsOn != nil || a.With != nil || a.Retries != nil || a.Criticality != CriticalityNormal || g.Name != "" {
		t.Errorf("got %+v", a)
	}
}
