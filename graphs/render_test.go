package graphs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// trickyGraph has labels with every character that DOT or Mermaid could
// misread.
const trickyGraph = `version: 1
name: 'tricky "name" \ with <html> & #hash'
nodes:
  - {id: network, kind: infrastructure, plugin: manual, criticality: vital, estimate: 2h, title: "Core \"network\" \\ back\\slash\nnew line\ttab"}
  - {id: ad, kind: infrastructure, plugin: exec, depends_on: [network], estimate: 4h, title: "a;b{c}[d](e)|f"}
  - {id: ris, kind: application, plugin: noop, depends_on: [ad], estimate: 1h, title: "end"}
  - {id: pacs, kind: application, plugin: noop, depends_on: [ad], criticality: high, estimate: 3h, title: "PACS <imaging> & ` + "`x`" + ` #5 %% not a comment"}
  - {id: ris-to-pacs, kind: interface, between: [ris, pacs], plugin: exec, estimate: 30m, title: "-->"}
  - {id: pacs-reentry, kind: data, plugin: manual, depends_on: [ris-to-pacs], criticality: low, title: "#quot; already"}
`

func mustParse(t *testing.T, name, src string) *Graph {
	t.Helper()
	g, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return g
}

// renderCases are the graphs every renderer test draws.
func renderCases(t *testing.T) map[string]*Graph {
	out := map[string]*Graph{
		"small":  mustLoad(t, "testdata/small.yaml"),
		"tricky": mustParse(t, "tricky.yaml", trickyGraph),
	}
	if _, err := os.Stat(hospitalFile); err == nil {
		out["hospital"] = mustLoad(t, hospitalFile)
	}
	return out
}

// TestDOTAcceptedByGraphviz feeds every rendering to graphviz's dot.
func TestDOTAcceptedByGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("graphviz dot not installed (apt-get install graphviz)")
	}
	for name, g := range renderCases(t) {
		for _, opts := range []RenderOptions{{}, {States: map[string]string{g.Nodes[0].ID: "succeeded", g.Nodes[1].ID: "failed"}}} {
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := RenderDOT(&buf, g, opts); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(dot, "-Tsvg")
				cmd.Stdin = bytes.NewReader(buf.Bytes())
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				svg, err := cmd.Output()
				if err != nil || stderr.Len() > 0 {
					t.Fatalf("dot refused the graph: %v\n%s\n%s", err, stderr.String(), buf.String())
				}
				if !bytes.Contains(svg, []byte("<svg")) {
					t.Fatalf("no svg out of dot")
				}
				// Every node is drawn with its own id as the first label line.
				for _, n := range g.Nodes {
					// graphviz writes '-' as &#45; in svg text.
					if !bytes.Contains(svg, []byte(">"+strings.ReplaceAll(n.ID, "-", "&#45;")+"<")) {
						t.Errorf("node %q not in the svg", n.ID)
					}
				}
			})
		}
	}
}

func TestDOTShapesAndInterfaces(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	var buf bytes.Buffer
	if err := RenderDOT(&buf, g, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`"network" [label="network\nCore network and firewalls\nvital · 2h", shape=box3d, style="filled", fillcolor="#f8d7da", color="#b03a2e", penwidth=2.5];`,
		`"pacs" [label="pacs\nhigh · 3h", shape=box, style="filled,rounded"`,
		`"ris-to-pacs" [label="ris-to-pacs\nnormal · 30m", shape=hexagon`,
		`shape=cylinder`,
		`"pacs" -> "ris-to-pacs" -> "ris" [style=dashed, dir=none`,
		`"network" -> "ad";`,
		`"ris-to-pacs" -> "pacs-reentry";`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s\nin\n%s", want, out)
		}
	}
	// The interface's ends are drawn through it, not as direct edges.
	if strings.Contains(out, `"ris" -> "ris-to-pacs";`) || strings.Contains(out, `"pacs" -> "ris-to-pacs";`) {
		t.Errorf("interface end drawn as a plain edge:\n%s", out)
	}
}

func TestRenderTargets(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	var buf bytes.Buffer
	if err := RenderDOT(&buf, g, RenderOptions{Targets: []string{"ris"}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, id := range []string{"network", "ad", "ris"} {
		if !strings.Contains(out, `"`+id+`" [`) {
			t.Errorf("target subset lacks %q", id)
		}
	}
	for _, id := range []string{"san", "pacs", "ris-to-pacs"} {
		if strings.Contains(out, `"`+id+`" [`) {
			t.Errorf("target subset has %q", id)
		}
	}
	if err := RenderMermaid(&buf, g, RenderOptions{Targets: []string{"rs"}}); err == nil || !strings.Contains(err.Error(), `did you mean "ris"?`) {
		t.Errorf("unknown target: got %v", err)
	}
}

var (
	mmNode    = regexp.MustCompile(`^  (n\d+)(\[\[|\(|\{\{|\[\()"([^"]*)"(\]\]|\)|\}\}|\)\])$`)
	mmEdge    = regexp.MustCompile(`^  (n\d+) --> (n\d+)$`)
	mmIface   = regexp.MustCompile(`^  (n\d+) -\.- (n\d+) -\.- (n\d+)$`)
	mmDef     = regexp.MustCompile(`^  classDef (c_[a-z_]+) fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6},stroke-width:[0-9.]+px,color:#[0-9a-f]{6}$`)
	mmClass   = regexp.MustCompile(`^  class (n\d+(?:,n\d+)*) (c_[a-z_]+)$`)
	mmTitle   = regexp.MustCompile(`^title: "(?:[^"\\]|\\.)*"$`)
	mmLabelOK = regexp.MustCompile(`^(?:[^"<>#&` + "`" + `]|<br/>|#(?:quot|\d+);)*$`)
)

var mmPairs = map[string]string{"[[": "]]", "(": ")", "{{": "}}", "[(": ")]"}

// checkMermaid checks a flowchart line by line against the subset of the
// Mermaid grammar RenderMermaid writes: header, quoted labels with only
// entity codes for special characters, edges between defined nodes,
// classes defined before use.
func checkMermaid(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 4 || lines[0] != "---" || !mmTitle.MatchString(lines[1]) || lines[2] != "---" || lines[3] != "flowchart LR" {
		t.Fatalf("bad header:\n%s", strings.Join(lines[:min(4, len(lines))], "\n"))
	}
	defined, classes := map[string]bool{}, map[string]bool{}
	for i, l := range lines[4:] {
		switch {
		case mmNode.MatchString(l):
			m := mmNode.FindStringSubmatch(l)
			if mmPairs[m[2]] != m[4] {
				t.Errorf("line %d: shape %s closed by %s", i+5, m[2], m[4])
			}
			if !mmLabelOK.MatchString(m[3]) {
				t.Errorf("line %d: unescaped character in label %q", i+5, m[3])
			}
			defined[m[1]] = true
		case mmEdge.MatchString(l) || mmIface.MatchString(l):
			for _, id := range regexp.MustCompile(`n\d+`).FindAllString(l, -1) {
				if !defined[id] {
					t.Errorf("line %d: edge to undefined node %s", i+5, id)
				}
			}
		case mmDef.MatchString(l):
			classes[mmDef.FindStringSubmatch(l)[1]] = true
		case mmClass.MatchString(l):
			m := mmClass.FindStringSubmatch(l)
			if !classes[m[2]] {
				t.Errorf("line %d: class %s used before classDef", i+5, m[2])
			}
		default:
			t.Errorf("line %d: not valid in our Mermaid subset: %q", i+5, l)
		}
	}
}

func TestMermaidSyntax(t *testing.T) {
	for name, g := range renderCases(t) {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderMermaid(&buf, g, RenderOptions{States: map[string]string{g.Nodes[0].ID: "running"}}); err != nil {
				t.Fatal(err)
			}
			checkMermaid(t, buf.String())
			if n := strings.Count(buf.String(), "\n  n"); n < len(g.Nodes) {
				t.Errorf("%d node lines for %d nodes", n, len(g.Nodes))
			}
		})
	}
}

func TestMermaidEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`a "b"`, `a #quot;b#quot;`},
		{`<x> & #y`, `#60;x#62; #38; #35;y`},
		{"`code`", "#96;code#96;"},
		{"line\nbreak", "line break"},
		{"ok é", "ok é"},
	} {
		if got := mermaidEscape(tc.in); got != tc.want {
			t.Errorf("mermaidEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDOTQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`a "b" \c`, `"a \"b\" \\c"`},
		{"two\nlines", `"two\nlines"`},
		{"tab\there\x01", `"tab here"`},
	} {
		if got := dotQuote(tc.in); got != tc.want {
			t.Errorf("dotQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestMermaidAcceptedByMermaid parses every rendering with the real
// mermaid package under node. It runs when MERMAID_NODE_MODULES names a
// node_modules folder with mermaid@11 and jsdom (npm install mermaid@11
// jsdom@24), and node is on PATH: CI's .ci/run installs both and sets it.
// The line-by-line check above always runs.
func TestMermaidAcceptedByMermaid(t *testing.T) {
	modules := os.Getenv("MERMAID_NODE_MODULES")
	node, err := exec.LookPath("node")
	if modules == "" || err != nil {
		t.Skip("set MERMAID_NODE_MODULES (npm install mermaid@11 jsdom@24; .ci/run does) and put node on PATH")
	}
	script, err := filepath.Abs("testdata/mermaid-check.mjs")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for name, g := range renderCases(t) {
		for i, opts := range []RenderOptions{{}, {States: map[string]string{g.Nodes[0].ID: "failed"}}} {
			var buf bytes.Buffer
			if err := RenderMermaid(&buf, g, opts); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.mmd", name, i))
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, path)
		}
	}
	cmd := exec.Command(node, append([]string{script}, files...)...)
	cmd.Env = append(os.Environ(), "MERMAID_NODE_MODULES="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mermaid refused a rendering: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "ok "); n != len(files) {
		t.Fatalf("%d of %d files parsed:\n%s", n, len(files), out)
	}
}

func TestWrapWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"short", []string{"short"}},
		{"Active Directory trusted core - users, tier 0 admins, krbtgt reset", []string{"Active Directory trusted core -", "users, tier 0 admins, krbtgt", "reset"}},
		{"averyveryveryverylongwordthatdoesnotfitanywhere x", []string{"averyveryveryverylongwordthatdoesnotfitanywhere", "x"}},
		{"été été été été été été été été", []string{"été été été été été été été été"}},
	} {
		got := wrapWords(tc.in, 32)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("wrapWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestMermaidTitleEscaped renders graphs with hostile names: the front
// matter must stay three lines, parse as YAML, and give the name back
// (line breaks and controls as spaces, bad UTF-8 as U+FFFD).
func TestMermaidTitleEscaped(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"quotes and backslash", `a "b" \c`, `a "b" \c`},
		{"newline ends the front matter", "x\n---\nflowchart TB", "x --- flowchart TB"},
		{"carriage return", "a\rb", "a b"},
		{"NEL", "a\u0085b", "a b"},
		{"line separator", "a\u2028b\u2029c", "a b c"},
		{"NUL and DEL", "a\x00b\x7fc", "a b c"},
		{"BOM", "\ufeffname", " name"},
		{"bad UTF-8", "caf\xe9", "caf\ufffd"},
		{"yaml syntax", "a: b # c", "a: b # c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustParse(t, "t.yaml", trickyGraph)
			g.Name = tt.in
			var buf bytes.Buffer
			if err := RenderMermaid(&buf, g, RenderOptions{}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			front, rest, ok := strings.Cut(strings.TrimPrefix(out, "---\n"), "\n---\n")
			if !ok || strings.ContainsAny(front, "\n\r") || !strings.HasPrefix(rest, "flowchart LR\n") {
				t.Fatalf("front matter is not one line followed by the flowchart:\n%q", out)
			}
			var fm map[string]string
			if err := yaml.Unmarshal([]byte(front), &fm); err != nil {
				t.Fatalf("front matter %q: %v", front, err)
			}
			if len(fm) != 1 || fm["title"] != tt.want {
				t.Errorf("front matter %q decodes to %q, want title %q", front, fm, tt.want)
			}
			checkMermaid(t, out)
		})
	}
}
