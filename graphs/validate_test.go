package graphs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// badCase is one expected problem of a file in examples/bad.
type badCase struct {
	file      string
	line, col int
	sentinel  error
	msg       string // a part of the message
}

var badCases = []badCase{
	{"missing-kind.yaml", 3, 5, ErrBadValue, `node "ad": missing kind (want infrastructure, application, interface, data)`},
	{"unknown-kind.yaml", 4, 11, ErrBadValue, `node "pacs": kind: unknown kind "aplication" (want infrastructure, application, interface, data)`},
	{"missing-plugin.yaml", 3, 5, ErrUnknownPlugin, `node "ad": missing plugin (want a built-in: exec, http, manual, noop`},
	{"undeclared-plugin.yaml", 7, 13, ErrUnknownPlugin, `plugin: undeclared plugin "pacs-vendr" (did you mean "pacs-vendor"?`},
	{"unknown-dependency.yaml", 9, 18, ErrUnknownNode, `node "pacs": depends_on: unknown node "sann" (did you mean "san"?)`},
	{"self-dependency.yaml", 6, 18, ErrSelfDependency, `node "ad": depends_on: node depends on itself`},
	{"interface-one-end.yaml", 9, 14, ErrInterfaceEnds, `exactly two distinct ends, got 1`},
	{"interface-same-ends.yaml", 9, 20, ErrInterfaceEnds, `both ends are "ris" (want two distinct nodes)`},
	{"interface-unknown-end.yaml", 9, 20, ErrUnknownNode, `between: unknown node "pacs"`},
	{"interface-no-ends.yaml", 3, 5, ErrInterfaceEnds, `exactly two distinct ends, got 0`},
	{"between-not-interface.yaml", 12, 14, ErrInterfaceEnds, `only interface nodes have ends`},
	{"cycle.yaml", 6, 18, ErrCycle, `node "ad": dependency cycle: ad -> dns -> dhcp -> ad`},
	{"cycles-several.yaml", 6, 18, ErrCycle, `dependency cycle: ad -> dns -> ad (a -> b: a depends on b); 3 nodes form this knot, also pki`},
	{"cycles-several.yaml", 22, 18, ErrCycle, `dependency cycle: lab-middleware -> lis -> lab-middleware`},
	{"duplicate-id.yaml", 6, 9, ErrDuplicateID, `duplicate id "ad" (first defined at line 3, column 9)`},
	{"missing-id.yaml", 3, 5, ErrSchema, `nodes[0]: missing id`},
	{"bad-id.yaml", 3, 9, ErrBadValue, `id: bad id "patient record" (want 1 to 128 letters`},
	{"bad-duration.yaml", 6, 15, ErrBadValue, `estimate: bad duration "4 hours" (want a duration such as`},
	{"bad-timeout.yaml", 2, 22, ErrBadValue, `defaults.timeout: duration "0s" must be more than zero`},
	{"bad-criticality.yaml", 6, 18, ErrBadValue, `criticality: unknown criticality "urgent" (want vital, high, normal, low)`},
	{"negative-retries.yaml", 6, 14, ErrBadValue, `retries: -1 is negative (want 0 or more)`},
	{"bad-sha256.yaml", 3, 59, ErrBadValue, `plugins.pacs-vendor.sha256: bad checksum "9F2C" (want 64 lowercase hex digits)`},
	{"plugin-missing-path.yaml", 3, 16, ErrSchema, `plugins.pacs-vendor: missing path`},
	{"unsupported-version.yaml", 1, 10, ErrVersion, `version 2 is not supported (want 1)`},
	{"missing-version.yaml", 1, 1, ErrVersion, `missing version (want version: 1)`},
	{"empty-graph.yaml", 3, 8, ErrEmpty, `empty graph: nodes is an empty list`},
	{"not-yaml.yaml", 4, 5, ErrSyntax, `not valid YAML: did not find expected ',' or ']'`},
	{"not-json.json", 4, 61, ErrSyntax, `not valid JSON: unexpected '}', want a string key`},
	{"not-a-graph.yaml", 1, 1, ErrSyntax, `not a graph file: want a mapping with version and nodes at the top, got list`},
	{"alias-bomb.yaml", 2, 50, ErrAliasBomb, `refused as an alias bomb`},
	{"invalid-utf8.yaml", 5, 30, ErrEncoding, `invalid UTF-8: byte 0xe9`},
	{"unknown-field.yaml", 6, 5, ErrSchema, `unknown field "depends" (did you mean "depends_on"? want one of id, kind`},
	{"unknown-field.json", 1, 83, ErrSchema, `unknown field "colour"`},
	{"wrong-type.yaml", 6, 14, ErrSchema, `retries: want a whole number, got string "two"`},
	{"duplicate-key.yaml", 6, 5, ErrSchema, `node "ad": duplicate key "kind"`},
	{"duplicate-key.json", 4, 83, ErrSchema, `with: duplicate key "cmd"`},
	{"bad-placeholder.yaml", 6, 56, ErrPlaceholder, `with.restore[2]: bad placeholder "${env:AD PASSWORD}"`},
	{"placeholder-not-ancestor.yaml", 9, 22, ErrPlaceholder, `${nodes.db.outputs.host} uses node "db", which "pacs" does not depend on`},
	{"duplicate-dependency.yaml", 9, 23, ErrSchema, `depends_on: "san" is listed twice`},
	{"zone-less-trusted-dependency.yaml", 14, 18, ErrZone, `node "ad": depends_on: "dpi" is in zone "clinical", less trusted than this node's zone "core"`},
	{"unknown-zone.yaml", 9, 11, ErrZone, `node "ad": zone: unknown zone "cor" (did you mean "core"? want one of core, clinical)`},
	{"missing-zone.yaml", 5, 5, ErrZone, `node "ad": missing zone (the graph declares zones: want one of core)`},
	{"interface-wrong-zone.yaml", 12, 11, ErrZone, `zone: interface between zones "core" and "clinical" belongs to the less trusted one, "clinical" (got "outside")`},
	{"wipe-without-evidence.yaml", 9, 13, ErrEvidence, `wipes: nothing preserves evidence of "dc01" before it is wiped`},
	{"unknown-scanner.yaml", 8, 12, ErrUnknownScanner, `scan: unknown scanner "iocz" (want one of iocs)`},
	{"bad-restore-point.yaml", 10, 24, ErrBadValue, `restore_points[0].time: bad time "last night"`},
	{"unknown-scanner-type.yaml", 3, 14, ErrBadValue, `scanners.av.type: unknown scanner type "antivirus" (want ioc, entropy, yara, clamav)`},
}

// TestBadExamples loads every file of examples/bad and checks each expected
// problem: its sentinel, its position and its message, formatted as
// FILE:LINE:COL: ….
func TestBadExamples(t *testing.T) {
	dir := filepath.Join("..", "examples", "bad")
	for _, tc := range badCases {
		t.Run(tc.file+fmt.Sprintf(":%d", tc.line), func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			_, err := Load(path)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			prefix := fmt.Sprintf("%s:%d:%d: ", path, tc.line, tc.col)
			for _, p := range ve.Problems {
				if p.Line == tc.line && p.Col == tc.col && strings.Contains(p.Message, strings.TrimPrefix(tc.msg, fmt.Sprintf("node %q: ", p.Node))) {
					if !errors.Is(p, tc.sentinel) {
						t.Errorf("problem %q: sentinel %v, want %v", p, p.err, tc.sentinel)
					}
					if got := p.Error(); !strings.HasPrefix(got, prefix) || !strings.Contains(got, tc.msg) {
						t.Errorf("got  %s\nwant %s…%s", got, prefix, tc.msg)
					}
					if !errors.Is(err, tc.sentinel) {
						t.Errorf("errors.Is(err, %v) = false", tc.sentinel)
					}
					return
				}
			}
			t.Errorf("no problem at %d:%d containing %q; got:\n%v", tc.line, tc.col, tc.msg, err)
		})
	}
}

var posRE = regexp.MustCompile(`^[^:]+:\d+:\d+: `)

// TestBadExamplesAllCovered checks that every file in examples/bad fails,
// that every line of its error names file:line:col, and that the table
// above covers it.
func TestBadExamplesAllCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "bad", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad examples: %v", err)
	}
	covered := map[string]bool{}
	for _, tc := range badCases {
		covered[tc.file] = true
	}
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".json") {
			continue
		}
		if !covered[base] {
			t.Errorf("%s: not in badCases", base)
		}
		_, err := Load(f)
		if err == nil {
			t.Errorf("%s: loaded without error", base)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, f+":") || !posRE.MatchString(line) {
				t.Errorf("%s: line without file:line:col: %q", base, line)
			}
		}
	}
}

func TestTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: no disk space used, and Load must refuse it from its
	// size alone, before reading.
	if err := f.Truncate(MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(path)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	want := path + ": file is 64.0 MiB, over the 64 MiB limit for graph files"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err.Error(), want)
	}
	if _, err := Parse("big.json", make([]byte, MaxFileSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse: got %v, want ErrTooLarge", err)
	}
}

// TestLongDependsOn: a node that depends on very many others (a final
// "reconnect to the outside world" step) is checked in linear time, and a
// repeated entry is still found.
func TestLongDependsOn(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nnodes:\n")
	var deps []string
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "  - {id: n%d, kind: data, plugin: noop}\n", i)
		deps = append(deps, fmt.Sprintf("n%d", i))
	}
	deps = append(deps, "n42")
	fmt.Fprintf(&b, "  - {id: last, kind: infrastructure, plugin: noop, depends_on: [%s]}\n", strings.Join(deps, ", "))
	_, err := Parse("long.yaml", []byte(b.String()))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || !strings.Contains(ve.Problems[0].Message, `"n42" is listed twice`) {
		t.Fatalf("got %v", err)
	}
}
