package graphs

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/internal/graphgen"
)

// parseBoth parses data as one document and in chunks of about 300 bytes,
// and reports whether the chunked path was taken.
func parseBoth(t *testing.T, name string, data []byte) (whole, chunked *Graph, werr, cerr error, used bool) {
	t.Helper()
	oldMin, oldBytes := yamlChunkMin, yamlChunkBytes
	defer func() { yamlChunkMin, yamlChunkBytes = oldMin, oldBytes }()
	yamlChunkMin = 1 << 62
	whole, werr = Parse(name, data)
	yamlChunkMin, yamlChunkBytes = 0, 300
	chunked, cerr = Parse(name, data)
	if ch := splitYAML(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))); ch != nil {
		if _, _, ok := parseYAMLChunked(data, newDecoder()); ok {
			used = true
		}
	}
	return whole, chunked, werr, cerr, used
}

// TestYAMLChunkedSameAsWhole: reading a YAML graph in chunks gives the
// same graph, or the same errors at the same FILE:LINE:COL, as reading it
// whole, whatever the file holds; files it cannot cut are read whole.
func TestYAMLChunkedSameAsWhole(t *testing.T) {
	var synth bytes.Buffer
	if err := graphgen.Generate(graphgen.Options{Nodes: 400, Seed: 3, Plugin: "exec"}).WriteYAML(&synth); err != nil {
		t.Fatal(err)
	}
	s := synth.String()
	mid := strings.Index(s, "  - id: n000200\n")
	if mid < 0 {
		t.Fatal("synthetic graph has no n000200")
	}
	ins := func(at int, text string) string { return s[:at] + text + s[at:] }
	hospital, _ := os.ReadFile(hospitalFile)
	tests := []struct {
		name      string
		src       string
		wantChunk bool
	}{
		{"synthetic", s, true},
		{"hospital", string(hospital), true},
		{"tricky", trickyGraph, true},
		{"unknown kind in the middle", strings.Replace(s, "  - id: n000200\n    kind: ", "  - id: n000200\n    kind: bogus-", 1), true},
		{"syntax error in the middle", ins(mid, "  - id: broken\n    kind: [unclosed\n"), false},
		{"alias to an anchor of another chunk", strings.Replace(strings.Replace(s, "    plugin: exec\n", "    plugin: &p exec\n", 1), "  - id: n000300\n", "  - id: n000300\n    title: *p\n", 1), false},
		{"anchor and alias in one entry", ins(mid, "  - {id: aa, kind: data, plugin: &q noop, title: *q}\n"), true},
		{"comment at column 1 between entries", ins(mid, "# a comment\n\n"), true},
		{"block scalar in an entry", ins(mid, "  - id: bs\n    kind: data\n    plugin: noop\n    title: |\n      line one\n      - not an entry\n    estimate: 1h\n"), true},
		{"top-level key after the list", s + "defaults:\n  retries: 2\n", true},
		{"nodes key twice", s + "nodes:\n  - {id: zz, kind: data, plugin: noop}\n", true},
		{"CRLF line ends", strings.ReplaceAll(s, "\n", "\r\n"), true},
		{"entries at column 1", strings.ReplaceAll(strings.ReplaceAll(s, "\n  - ", "\n- "), "\n    ", "\n  "), true},
		{"alias bomb in an entry", ins(mid, "  - id: bomb\n    kind: data\n    plugin: noop\n    with: {a: &a [x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c], e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]}\n"), false},
		{"a second document", s + "---\nversion: 1\n", false},
		{"a cycle across chunks", strings.Replace(s, "  - id: n000001\n", "  - id: n000001\n    depends_on: [n000399]\n", 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole, chunked, werr, cerr, used := parseBoth(t, "g.yaml", []byte(tt.src))
			if used != tt.wantChunk {
				t.Errorf("chunked reading used = %v, want %v", used, tt.wantChunk)
			}
			if fmt.Sprint(werr) != fmt.Sprint(cerr) {
				t.Fatalf("errors differ:\nwhole:   %v\nchunked: %v", werr, cerr)
			}
			if werr == nil && !reflect.DeepEqual(whole, chunked) {
				t.Fatal("graphs differ")
			}
			if werr != nil {
				t.Logf("both: %.300v", werr)
			}
		})
	}
}
