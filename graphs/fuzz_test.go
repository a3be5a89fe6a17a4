package graphs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bytes to Parse, as YAML and as JSON. It checks
// that nothing panics; that every problem has a position (Line and Col ≥ 1:
// the only documented exception, a file over the size limit, cannot occur
// here) and a message; that our JSON scanner accepts exactly what
// encoding/json accepts; and that a graph that passes is acyclic, analyses
// into a full topological order and renders.
//
// The seed corpus is testdata/fuzz/FuzzParse (every file of examples/bad,
// the valid fixtures); `make fuzz` runs the fuzzer for longer.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop}\n"), false)
	f.Add([]byte(`{"version": 1, "nodes": [{"id": "a", "kind": "data", "plugin": "noop"}]}`), true)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "fuzz.yaml"
		if asJSON {
			name = "fuzz.json"
		}
		g, err := Parse(name, data)
		if asJSON && utf8.Valid(data) {
			checkJSONAgrees(t, data)
		}
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error is not a *ValidationError with problems: %v", err)
			}
			for _, p := range ve.Problems {
				if p.Line < 1 || p.Col < 1 || p.Message == "" || p.err == nil {
					t.Fatalf("problem without position, message or sentinel: %#v", p)
				}
				if !strings.HasPrefix(p.Error(), name+":") || strings.Contains(p.Error(), "\n") {
					t.Fatalf("bad problem text: %q", p.Error())
				}
			}
			return
		}
		a := Analyze(g)
		if len(a.Order) != len(g.Nodes) {
			t.Fatalf("order has %d of %d nodes: a cycle got through", len(a.Order), len(g.Nodes))
		}
		pos := make([]int, len(g.Nodes))
		for k, v := range a.Order {
			pos[v] = k
		}
		for v, deps := range a.Deps {
			for _, d := range deps {
				if pos[d] >= pos[v] {
					t.Fatalf("order puts %s before its dependency %s", g.Nodes[v].ID, g.Nodes[d].ID)
				}
			}
		}
		EstimateDuration(g, a, 3)
		if err := RenderDOT(io.Discard, g, RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := RenderMermaid(io.Discard, g, RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, n := range g.Nodes {
			if _, err := Expand(n.With, func(Ref) (string, error) { return "x", nil }); err != nil {
				t.Fatalf("node %s: placeholders passed validation but not Expand: %v", n.ID, err)
			}
		}
	})
}

// checkJSONAgrees checks that parseJSON accepts exactly what json.Valid
// accepts (nesting within MaxDepth).
func checkJSONAgrees(t *testing.T, data []byte) {
	body := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	_, perr := parseJSON(body, false, nil)
	valid := json.Valid(body)
	if perr != nil && strings.Contains(perr.Message, "nesting deeper") {
		return
	}
	if valid != (perr == nil) {
		t.Fatalf("json.Valid = %v but parseJSON error = %v for %q", valid, perr, body)
	}
}
