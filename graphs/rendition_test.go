package graphs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// renditionCases are YAML scalars and structures whose text JSON does not
// have: each must render so that the JSON reads the same value.
var renditionCases = map[string]string{
	"scalars.yaml": `version: 1
name: scalars
nodes:
  - id: a
    kind: data
    plugin: noop
    retries: 0x1F
    with:
      hex: 0x1F
      octal: 0o17
      under: 1_000
      plus: +5
      neg: -12
      half: .5
      one: 1.0
      exp: 1e3
      small: 1e-7
      negzero: -0.0
      big: 123456789012345678901234567890
      bool: true
      no: false
      date: 2024-01-02T03:04:05Z
      nul: ~
      null2: null
      empty:
      quoted: "say \"hi\" \\ back\tslash\nnew line \x01 \u2028 é 🦀"
      single: 'it''s'
      folded: >
        folded
        text
      literal: |
        line 1
        line 2
      list: [1, 2.5, "x", [], {}]
      nested: {a: {b: [{c: d}]}}
      "spaced key": 1
      "": empty key
  - {id: gate, kind: application, plugin: manual, approvals: 0o3, depends_on: [a]}
`,
	"anchors.yaml": `version: 1
defaults: &defaults {timeout: 5m, retries: 2}
nodes:
  - &base {id: a, kind: application, plugin: noop, with: &w {k: [1, 2], s: x}}
  - <<: *base
    id: b
    depends_on: [a]
    with: *w
  - <<: [{kind: data, title: first}, {title: second, plugin: noop}]
    id: c
    depends_on: [b, a]
    with: {<<: *w, s: y}
`,
	"interface.yaml": `version: 1
zones: [{id: core, title: Core}, {id: edge}]
nodes:
  - {id: db, kind: data, plugin: noop, zone: core, criticality: vital, estimate: 10m}
  - {id: app, kind: application, plugin: noop, zone: core, depends_on: [db], owner: "Dr. X", contact: "+33 1 23", runbook: "https://x/y?a=b&c=<d>"}
  - {id: link, kind: interface, plugin: noop, zone: core, between: [db, app], timeout: 1h, rto: 4h}
`,
	"bom.yaml":          "\xef\xbb\xbfversion: 1\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
	"json-in-yaml.yaml": `{"version": 1, "nodes": [{"id": "a", "kind": "data", "plugin": "noop", "with": {"n": 1.50}}]}`,
	"noext":             "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {f: 2.0}}\n",
	"plain.json":        `{"version": 1, "nodes": [{"id": "a", "kind": "data", "plugin": "noop", "with": {"x": 1E2, "y": "\u00e9"}}]}`,
}

// renditionRefused are graphs that parse but have no JSON rendition.
var renditionRefused = map[string]string{
	"inf.yaml":    "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {x: .inf}}\n",
	"neginf.yaml": "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {x: -.Inf}}\n",
	"nan.yaml":    "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {x: .nan}}\n",
}

// graphFiles returns the graph files of testdata and examples (and the
// seeds of the fuzz corpus), by name, with renditionCases.
func graphFiles(t *testing.T) map[string][]byte {
	files := map[string][]byte{}
	for name, src := range renditionCases {
		files["case/"+name] = []byte(src)
	}
	for _, root := range []string{"testdata", "../examples"} {
		filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
			default:
				if !strings.Contains(path, "fuzz") {
					return nil
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(path, "fuzz") {
				files[path] = data
				return nil
			}
			// A corpus entry: go test fuzz v1, then []byte("…") and bool(…).
			lines := strings.Split(string(data), "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[1], "[]byte(") {
				return nil
			}
			src, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				return nil
			}
			name := path + ".yaml"
			if strings.TrimSpace(lines[2]) == "bool(true)" {
				name = path + ".json"
			}
			files[name] = []byte(src)
			return nil
		})
	}
	if len(files) < 50 {
		t.Fatalf("only %d graph files found", len(files))
	}
	return files
}

// clearPositions zeroes every Position reachable from v (exported
// fields, slices, pointers, map values).
func clearPositions(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			clearPositions(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[Position]() {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				clearPositions(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			clearPositions(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			clearPositions(e)
			v.SetMapIndex(k, e)
		}
	}
}

// hasPosition reports whether a non-zero Position is reachable from v.
func hasPosition(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return !v.IsNil() && hasPosition(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[Position]() {
			return !v.IsZero()
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && hasPosition(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if hasPosition(v.Index(i)) {
				return true
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if hasPosition(v.MapIndex(k)) {
				return true
			}
		}
	}
	return false
}

// sameGraph compares two graphs but for Source and positions; Hash is
// compared by the caller.
func sameGraph(t *testing.T, name string, want, got *Graph) {
	t.Helper()
	w, g := *want, *got
	w.Source, g.Source = nil, nil
	w.sourceHash, g.sourceHash = "", ""
	clearPositions(reflect.ValueOf(&w))
	clearPositions(reflect.ValueOf(&g))
	if !reflect.DeepEqual(&w, &g) {
		for i := range min(len(w.Nodes), len(g.Nodes)) {
			if !reflect.DeepEqual(w.Nodes[i], g.Nodes[i]) {
				t.Errorf("%s: node %d differs:\n want %+v\n got  %+v", name, i, *w.Nodes[i], *g.Nodes[i])
				break
			}
		}
		w.Nodes, g.Nodes = nil, nil
		t.Errorf("%s: graphs differ:\n want %+v\n got  %+v", name, w, g)
	}
}

// checkRendition checks that src's rendition reads as src, when src
// parses; it returns whether src parsed.
func checkRendition(t *testing.T, name string, src []byte) bool {
	t.Helper()
	want, err := Parse(name, src)
	r, rerr := Rendition(name, src)
	if err != nil {
		return false
	}
	if rerr != nil {
		t.Errorf("%s: %v", name, rerr)
		return true
	}
	got, err := ParseJSON(name, r)
	if err != nil {
		t.Errorf("%s: the rendition does not parse: %v\n%s", name, err, r)
		return true
	}
	sameGraph(t, name, want, got)
	if got.Dir != want.Dir || got.File != name || !bytes.Equal(got.Source, r) {
		t.Errorf("%s: File %q Dir %q, want %q %q (and the rendition as Source)", name, got.File, got.Dir, name, want.Dir)
	}
	rg, err := ParseRendition(name, r, want.Hash())
	if err != nil {
		t.Errorf("%s: ParseRendition: %v", name, err)
		return true
	}
	if rg.Hash() != want.Hash() {
		t.Errorf("%s: ParseRendition's Hash is %s, want the source's %s", name, rg.Hash(), want.Hash())
	}
	if hasPosition(reflect.ValueOf(rg)) {
		t.Errorf("%s: ParseRendition left positions", name)
	}
	sameGraph(t, name, want, rg)
	return true
}

// TestRenditionEquivalent: for every graph file of testdata and examples
// that parses, its rendition parses to the same graph but for Source and
// positions.
func TestRenditionEquivalent(t *testing.T) {
	parsed := 0
	for name, src := range graphFiles(t) {
		if checkRendition(t, name, src) {
			parsed++
		} else if strings.HasPrefix(name, "case/") {
			_, err := Parse(name, src)
			t.Errorf("%s does not parse: %v", name, err)
		}
	}
	t.Logf("%d graphs parsed and compared", parsed)
}

func TestRenditionJSONAsIs(t *testing.T) {
	src := []byte(renditionCases["plain.json"])
	r, err := Rendition("g.json", src)
	if err != nil || !bytes.Equal(r, src) {
		t.Fatalf("a JSON source is its own rendition: %q, %v", r, err)
	}
	// Read as YAML by its name, JSON text is rendered anew.
	r, err = Rendition("g.yaml", src)
	if err != nil || bytes.Equal(r, src) {
		t.Fatalf("JSON text named .yaml: %q, %v", r, err)
	}
}

func TestRenditionRefused(t *testing.T) {
	for name, src := range renditionRefused {
		if _, err := Parse(name, []byte(src)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r, err := Rendition(name, []byte(src)); err == nil || !strings.Contains(err.Error(), "no JSON rendition") {
			t.Errorf("%s: rendition %q, %v; want refused", name, r, err)
		}
	}
	// A key that is not a string: the graph is refused too, and has no
	// rendition.
	src := []byte("version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {1: x}}\n")
	if _, err := Rendition("k.yaml", src); err == nil || !strings.Contains(err.Error(), "not a string") {
		t.Errorf("key 1: %v", err)
	}
	if _, err := Rendition("k.yaml", []byte("version: 1\nnodes: [\n")); err == nil {
		t.Error("bad YAML has a rendition")
	}
	if _, err := ParseRendition("k.yaml", []byte(`{}`), "abc"); err == nil {
		t.Error("a bad source hash is taken")
	}
}

// TestRenditionChunked renders a graph large enough to be read in chunks,
// and one whose chunked reading gives up half way (an alias to an anchor
// of another chunk): the nodes come out once, in order.
func TestRenditionChunked(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nname: big\nnodes:\n")
	for i := range 6000 {
		switch {
		case i == 0:
			b.WriteString("  - {id: n0, kind: data, plugin: noop, with: &w {a: 1, b: [x, .5]}}\n")
		case i == 5999:
			b.WriteString("  - {id: n5999, kind: data, plugin: noop, depends_on: [n0], with: *w}\n")
		default:
			b.WriteString("  - {id: n" + strconv.Itoa(i) + ", kind: application, plugin: noop, depends_on: [n" + strconv.Itoa(i-1) + "], title: \"t: " + strconv.Itoa(i) + "\"}\n")
		}
	}
	b.WriteString("defaults: {retries: 1}\n")
	src := []byte(b.String())
	if len(src) < yamlChunkMin*2 {
		t.Fatalf("only %d bytes: not chunked", len(src))
	}
	if !checkRendition(t, "big.yaml", src) {
		t.Fatal("does not parse")
	}
	plain := bytes.Replace(src, []byte("&w "), nil, 1)
	plain = bytes.Replace(plain, []byte("*w"), []byte("{a: 1}"), 1)
	if !checkRendition(t, "plain.yaml", plain) {
		t.Fatal("does not parse")
	}
}

func FuzzRendition(f *testing.F) {
	for _, src := range renditionCases {
		f.Add([]byte(src))
	}
	f.Add([]byte("version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {x: 0x10}}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, err := Parse("f.yaml", src); err != nil {
			Rendition("f.yaml", src) // must not panic
			return
		}
		if _, err := Rendition("f.yaml", src); err != nil && strings.Contains(err.Error(), "no JSON rendition") {
			return
		}
		checkRendition(t, "f.yaml", src)
	})
}
