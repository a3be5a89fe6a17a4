package graphs

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		in      string
		refs    []Ref
		literal string // the text with every placeholder replaced by "<>"
		err     string
	}{
		{in: "plain $HOME and $1", literal: "plain $HOME and $1"},
		{in: "${env:TOKEN}", refs: []Ref{{Env: "TOKEN"}}, literal: "<>"},
		{in: "h=${nodes.db.outputs.host}:${nodes.db.outputs.port}", refs: []Ref{{Node: "db", Key: "host"}, {Node: "db", Key: "port"}}, literal: "h=<>:<>"},
		{in: "${nodes.a.outputs.b.outputs.c}", refs: []Ref{{Node: "a.outputs.b", Key: "c"}}, literal: "<>"},
		{in: "cost $${not.a.placeholder}", literal: "cost ${not.a.placeholder}"},
		{in: "$$${env:X}", literal: "$${env:X}"}, // "$" then the escape "$${"
		{in: "${oops}", err: `bad placeholder "${oops}" (want ${env:NAME}`},
		{in: "${env:}", err: `environment variable name ""`},
		{in: "${env:1X}", err: `environment variable name "1X"`},
		{in: "${nodes.db.outputs.}", err: `output key ""`},
		{in: "${nodes.db.outputs.a.b}", err: `output key "a.b"`},
		{in: "${nodes..outputs.k}", err: `node id ""`},
		{in: "${nodes.db}", err: `bad placeholder "${nodes.db}"`},
		{in: "tail ${env:X", err: `placeholder "${env:X" is not closed with }`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			parts, err := parseTemplate(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var refs []Ref
			var lit strings.Builder
			for _, p := range parts {
				if p.ref != nil {
					refs = append(refs, *p.ref)
					lit.WriteString("<>")
				} else {
					lit.WriteString(p.lit)
				}
			}
			if !reflect.DeepEqual(refs, tc.refs) || lit.String() != tc.literal {
				t.Errorf("got refs %v text %q, want %v %q", refs, lit.String(), tc.refs, tc.literal)
			}
		})
	}
}

func TestRefsAndExpand(t *testing.T) {
	with := map[string]any{
		"restore": []any{"./restore.sh", "--password", "${env:AD_PASSWORD}", 3, true, nil},
		"env":     map[string]any{"DB": "${nodes.db.outputs.host}:${nodes.db.outputs.port}", "LIT": "$${env:NOT}"},
		"again":   "${env:AD_PASSWORD}",
	}
	refs := Refs(with)
	want := []Ref{{Env: "AD_PASSWORD"}, {Node: "db", Key: "host"}, {Node: "db", Key: "port"}}
	if !reflect.DeepEqual(refs, want) {
		t.Errorf("Refs: got %v want %v", refs, want)
	}
	values := map[Ref]string{{Env: "AD_PASSWORD"}: "s3cret", {Node: "db", Key: "host"}: "10.0.0.5", {Node: "db", Key: "port"}: "5432"}
	out, err := Expand(with, func(r Ref) (string, error) { return values[r], nil })
	if err != nil {
		t.Fatal(err)
	}
	wantOut := map[string]any{
		"restore": []any{"./restore.sh", "--password", "s3cret", 3, true, nil},
		"env":     map[string]any{"DB": "10.0.0.5:5432", "LIT": "${env:NOT}"},
		"again":   "s3cret",
	}
	if !reflect.DeepEqual(out, wantOut) {
		t.Errorf("Expand: got %v want %v", out, wantOut)
	}
	// The input is left as it was (a deep copy).
	if with["restore"].([]any)[2] != "${env:AD_PASSWORD}" || with["env"].(map[string]any)["LIT"] != "$${env:NOT}" {
		t.Error("Expand changed its input")
	}
	missing := errors.New("not set")
	_, err = Expand(with, func(r Ref) (string, error) {
		if r.Env != "" {
			return "", missing
		}
		return "x", nil
	})
	if !errors.Is(err, missing) || !strings.Contains(err.Error(), "${env:AD_PASSWORD}") {
		t.Errorf("resolve error: %v", err)
	}
	if out, err := Expand(nil, nil); out != nil || err != nil {
		t.Errorf("Expand(nil): %v %v", out, err)
	}
}

// TestPlaceholderValidation checks the graph-level rules: a node may use
// the outputs of its ancestors only.
func TestPlaceholderValidation(t *testing.T) {
	src := `version: 1
nodes:
  - {id: db, kind: infrastructure, plugin: noop}
  - {id: app, kind: application, plugin: noop, depends_on: [db]}
  - {id: iface, kind: interface, plugin: exec, between: [app, other], with: {a: "${nodes.db.outputs.host}", b: "${nodes.app.outputs.url}"}}
  - {id: other, kind: application, plugin: noop}
  - {id: late, kind: data, plugin: exec, depends_on: [iface], with: {deep: {list: ["${nodes.db.outputs.host}", "${nodes.other.outputs.x}"]}}}
  - {id: wrong, kind: data, plugin: exec, depends_on: [db], with: {a: "${nodes.app.outputs.url}", b: "${nodes.ghost.outputs.k}", c: "${nodes.wrong.outputs.k}"}}
`
	_, err := Parse("p.yaml", []byte(src))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		`p.yaml:8:71: node "wrong": with.a: ${nodes.app.outputs.url} uses node "app", which "wrong" does not depend on (add it to depends_on, directly or through a dependency)`,
		`p.yaml:8:102: node "wrong": with.b: ${nodes.ghost.outputs.k} names unknown node "ghost"`,
		`p.yaml:8:133: node "wrong": with.c: ${nodes.wrong.outputs.k} refers to the node's own outputs (want an output of a node it depends on)`,
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPlaceholderAncestorGroups: a node referred to by many others is
// checked through its descendants; the answers match the per-reference
// search.
func TestPlaceholderAncestorGroups(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nnodes:\n  - {id: ad, kind: infrastructure, plugin: noop}\n  - {id: lone, kind: infrastructure, plugin: noop}\n")
	b.WriteString("  - {id: c0, kind: application, plugin: noop, depends_on: [ad]}\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "  - {id: c%d, kind: application, plugin: exec, depends_on: [c%d], with: {d: \"${nodes.ad.outputs.domain}\"}}\n", i, i-1)
	}
	b.WriteString("  - {id: stray, kind: application, plugin: exec, depends_on: [lone], with: {d: \"${nodes.ad.outputs.domain}\", e: \"${nodes.c3.outputs.x}\"}}\n")
	_, err := Parse("groups.yaml", []byte(b.String()))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Node+" "+p.Field)
	}
	if want := []string{"stray with.d", "stray with.e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v\n%v", got, want, err)
	}
}
