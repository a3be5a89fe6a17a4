package graphs

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseProblems is the table of problems beyond examples/bad: each
// input gives exactly the listed problems, in order, with their positions.
func TestParseProblems(t *testing.T) {
	const ok = "\n  - {id: a, kind: data, plugin: noop}\n"
	for _, tc := range []struct {
		name, file, src string
		want            []string
		sentinel        error
	}{
		{"version as string", "g.yaml", "version: \"1\"\nnodes:" + ok,
			[]string{`g.yaml:1:10: version: want 1, got string "1"`}, ErrVersion},
		{"top-level unknown field", "g.yaml", "version: 1\nnodez: []\nnodes:" + ok,
			[]string{`g.yaml:2:1: unknown field "nodez" (did you mean "nodes"? want one of version, name, plugins, defaults, limits, nodes, zones, scanners, incident, notify)`}, ErrSchema},
		{"nodes not a list", "g.yaml", "version: 1\nnodes: {a: 1}\n",
			[]string{`g.yaml:2:8: nodes: want a list of nodes, got mapping`}, ErrSchema},
		{"node not a mapping", "g.yaml", "version: 1\nnodes:\n  - just-an-id\n",
			[]string{`g.yaml:3:5: nodes[0]: want a node (a mapping with id, kind, plugin …), got string "just-an-id"`}, ErrSchema},
		{"id as number", "g.yaml", "version: 1\nnodes:\n  - {id: 42, kind: data, plugin: noop}\n",
			[]string{`g.yaml:3:10: id: want a string, got integer 42`}, ErrSchema},
		{"depends_on not a list", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, depends_on: b}\n",
			[]string{`g.yaml:3:51: node "a": depends_on: want a list of node ids, got string "b"`}, ErrSchema},
		{"with not a mapping", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: [x]}\n",
			[]string{`g.yaml:3:45: node "a": with: want a mapping (the plugin's settings), got list`}, ErrSchema},
		{"with non-string key", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {1: x}}\n",
			[]string{`g.yaml:3:46: node "a": with: want a string key, got integer 1`}, ErrSchema},
		{"with duplicate nested key", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, with: {env: {A: 1, A: 2}}}\n",
			[]string{`g.yaml:3:58: node "a": with.env: duplicate key "A"`}, ErrSchema},
		{"builtin declared", "g.yaml", "version: 1\nplugins:\n  exec: {path: ./x}\nnodes:" + ok,
			[]string{`g.yaml:3:3: plugins: "exec" is a built-in plugin and needs no entry (built-ins: exec, http, manual, noop)`}, ErrBadValue},
		{"bad plugin name", "g.yaml", "version: 1\nplugins:\n  \"my plugin\": {path: ./x}\nnodes:" + ok,
			[]string{`g.yaml:3:3: plugins: bad plugin name "my plugin"`}, ErrBadValue},
		{"max_parallel negative", "g.yaml", "version: 1\nplugins:\n  p: {path: ./x, max_parallel: -2}\nnodes:" + ok,
			[]string{`g.yaml:3:32: plugins.p.max_parallel: -2 is negative (want 0 or more)`}, ErrBadValue},
		{"plugin unknown field", "g.yaml", "version: 1\nplugins:\n  p: {path: ./x, sha: abc}\nnodes:" + ok,
			[]string{`g.yaml:3:18: unknown field "sha" (did you mean "sha256"? want one of path, sha256, max_parallel, start_timeout)`}, ErrSchema},
		{"start_timeout zero", "g.yaml", "version: 1\nplugins:\n  p: {path: ./x, start_timeout: 0s}\nnodes:" + ok,
			[]string{`g.yaml:3:33: plugins.p.start_timeout: duration "0s" must be more than zero`}, ErrBadValue},
		{"limits bad size", "g.yaml", "version: 1\nlimits: {output_value: 64GB}\nnodes:" + ok,
			[]string{`g.yaml:2:24: limits.output_value: bad size "64GB" (want a number of bytes or a size such as 64KiB, 1MiB)`}, ErrBadValue},
		{"limits too big", "g.yaml", "version: 1\nlimits: {node_outputs: 1000MiB}\nnodes:" + ok,
			[]string{`g.yaml:2:24: limits.node_outputs: 1000MiB is out of range (want 1 byte to 16MiB)`}, ErrBadValue},
		{"limits keys zero", "g.yaml", "version: 1\nlimits: {output_keys: 0}\nnodes:" + ok,
			[]string{`g.yaml:2:23: limits.output_keys: 0 is out of range (want 1 to 100000)`}, ErrBadValue},
		{"defaults negative retries", "g.yaml", "version: 1\ndefaults: {retries: -3}\nnodes:" + ok,
			[]string{`g.yaml:2:21: defaults.retries: -3 is negative (want 0 or more)`}, ErrBadValue},
		{"defaults negative delay", "g.yaml", "version: 1\ndefaults: {retry_delay: -1s}\nnodes:" + ok,
			[]string{`g.yaml:2:25: defaults.retry_delay: bad duration "-1s"`}, ErrBadValue},
		{"node timeout zero", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, timeout: 0}\n",
			[]string{`g.yaml:3:48: node "a": timeout: want a string, got integer 0`}, ErrSchema},
		{"retries float", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, retries: 1.5}\n",
			[]string{`g.yaml:3:48: node "a": retries: want a whole number, got number 1.5`}, ErrSchema},
		{"retries huge", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, retries: 99999999999}\n",
			[]string{`g.yaml:3:48: node "a": retries: 99999999999 is out of range (want 0 to 1000000)`}, ErrBadValue},
		{"id too long", "g.yaml", "version: 1\nnodes:\n  - {id: " + strings.Repeat("a", 129) + ", kind: data, plugin: noop}\n",
			[]string{`g.yaml:3:10: node "` + strings.Repeat("a", 129) + `": id: bad id "` + strings.Repeat("a", 60) + `…"`}, ErrBadValue},
		{"id leading dash", "g.yaml", "version: 1\nnodes:\n  - {id: -a, kind: data, plugin: noop}\n",
			[]string{`g.yaml:3:10: node "-a": id: bad id "-a"`}, ErrBadValue},
		{"unicode id", "g.yaml", "version: 1\nnodes:\n  - {id: pacs-é, kind: data, plugin: noop}\n",
			[]string{`g.yaml:3:10: node "pacs-é": id: bad id "pacs-é"`}, ErrBadValue},
		{"empty plugin", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: \"\"}\n",
			[]string{`g.yaml:3:33: node "a": plugin: empty`}, ErrUnknownPlugin},
		{"two documents", "g.yaml", "version: 1\nnodes:" + ok + "---\nversion: 1\n",
			[]string{`g.yaml:4:1: not a graph file: more than one YAML document (want exactly one)`}, ErrSyntax},
		{"custom tag", "g.yaml", "version: 1\nname: !secret x\nnodes:" + ok,
			[]string{`g.yaml:2:7: unsupported YAML tag !secret on "x"`}, ErrSchema},
		{"unknown anchor", "g.yaml", "version: 1\nname: *nope\nnodes:" + ok,
			[]string{`g.yaml:2:7: not valid YAML: alias *nope has no anchor &nope before it`}, ErrSyntax},
		{"tab indentation", "g.yaml", "version: 1\nnodes:\n\t- {id: a}\n",
			[]string{`g.yaml:3:2: not valid YAML: found character that cannot start any token`}, ErrSyntax},
		{"empty file", "g.yaml", "",
			[]string{`g.yaml:1:1: not a graph file: the file is empty`}, ErrSyntax},
		{"comments only", "g.yaml", "# nothing\n",
			[]string{`g.yaml:1:1: not a graph file: the file is empty`}, ErrSyntax},
		{"scalar document", "g.yaml", "hello\n",
			[]string{`g.yaml:1:1: not a graph file: want a mapping with version and nodes at the top, got string "hello"`}, ErrSyntax},
		{"json minified positions", "g.json", `{"version":1,"nodes":[{"id":"a","kind":"data","plugin":"noop"},{"id":"b","kind":"dat","plugin":"noop"}]}`,
			[]string{`g.json:1:81: node "b": kind: unknown kind "dat" (want infrastructure, application, interface, data)`}, ErrBadValue},
		{"json unicode columns", "g.json", "{\"version\":1,\"name\":\"été\",\"nodes\":[{\"id\":\"a\",\"kind\":\"data\",\"plugin\":\"noop\",\"x\":1}]}",
			[]string{`g.json:1:76: node "a": unknown field "x"`}, ErrSchema},
		{"json escaped key duplicate", "g.json", `{"version":1,"nodes":[{"id":"a","kind":"data","plugin":"noop","with":{"k":1,"\u006b":2}}]}`,
			[]string{`g.json:1:77: node "a": with: duplicate key "k"`}, ErrSchema},
		{"json trailing data", "g.json", `{"version":1,"nodes":[]} x`,
			[]string{`g.json:1:26: not valid JSON: unexpected 'x' after the top-level value`}, ErrSyntax},
		{"json leading zero", "g.json", `{"version":01,"nodes":[]}`,
			[]string{`g.json:1:13: not valid JSON: unexpected '1', want ',' or '}'`}, ErrSyntax},
		{"json control char", "g.json", "{\"version\":1,\"name\":\"a\tb\",\"nodes\":[]}",
			[]string{`g.json:1:23: not valid JSON: control character '\t' in string`}, ErrSyntax},
		{"json deep", "g.json", strings.Repeat("[", 300) + strings.Repeat("]", 300),
			[]string{`g.json:1:257: not valid JSON: nesting deeper than 256`}, ErrSyntax},
		{"json by content", "graph", "\n  {\"version\": 1, \"nodes\": 3}",
			[]string{`graph:2:27: nodes: want a list of nodes, got integer 3`}, ErrSchema},
		{"bom then yaml", "g.yaml", "\xef\xbb\xbfversion: 2\nnodes:" + ok,
			[]string{`g.yaml:1:10: version 2 is not supported (want 1)`}, ErrVersion},
		{"empty nodes", "g.yaml", "version: 1\nnodes:\n",
			[]string{`g.yaml:2:7: empty graph: nodes has no entries (want at least one node)`}, ErrEmpty},
		{"null required field", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: ~, plugin: noop}\n",
			[]string{`g.yaml:3:19: node "a": kind: want a string, got null`}, ErrSchema},
		{"json nodes twice", "g.json", `{"version":1,"nodes":[{"id":"a","kind":"data","plugin":"noop"}],"nodes":[{"id":"b"}]}`,
			[]string{`g.json:1:65: duplicate key "nodes"`}, ErrSchema},
		{"yaml nodes twice", "g.yaml", "version: 1\nnodes:" + ok + "nodes: []\n",
			[]string{`g.yaml:4:1: duplicate key "nodes"`}, ErrSchema},
		{"json syntax after nodes", "g.json", `{"version":1,"nodes":[{"id":"a","kind":"bad","plugin":"noop"}],}`,
			[]string{`g.json:1:64: not valid JSON: unexpected '}', want a string key`}, ErrSyntax},
		{"json nested nodes key is not the list", "g.json", `{"version":1,"nodes":[{"id":"a","kind":"data","plugin":"noop","with":{"nodes":[1]}}],"name":5}`,
			[]string{`g.json:1:93: name: want a string, got integer 5`}, ErrSchema},
		{"between not a list", "g.yaml", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop}\n  - {id: i, kind: interface, plugin: noop, between: a}\n",
			[]string{`g.yaml:4:53: node "i": between: want a list of node ids, got string "a"`}, ErrSchema},
		{"missing everything", "g.yaml", "name: x\n",
			[]string{`g.yaml:1:1: missing version (want version: 1)`, `g.yaml:1:1: empty graph: no nodes field (want nodes: a list of nodes)`}, ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.file, []byte(tc.src))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ve.Problems), len(tc.want), err)
			}
			for i, p := range ve.Problems {
				if !strings.HasPrefix(p.Error(), tc.want[i]) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…", i, p.Error(), tc.want[i])
				}
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(err, %v) = false", tc.sentinel)
			}
		})
	}
}

func TestManyProblemsAtOnce(t *testing.T) {
	src := `version: 1
nodes:
  - {id: a, kind: bad, plugin: nope, depends_on: [zz], estimate: soon, retries: -1, criticality: max}
  - {id: a, plugin: noop}
`
	_, err := Parse("m.yaml", []byte(src))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	var sentinels []error
	for _, p := range ve.Problems {
		sentinels = append(sentinels, p.err)
	}
	want := []error{ErrBadValue, ErrUnknownPlugin, ErrUnknownNode, ErrBadValue, ErrBadValue, ErrBadValue, ErrBadValue, ErrDuplicateID}
	if !reflect.DeepEqual(sentinels, want) {
		t.Errorf("got %v\n%v", sentinels, err)
	}
	// Sorted by position.
	for i := 1; i < len(ve.Problems); i++ {
		a, b := ve.Problems[i-1], ve.Problems[i]
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("problems out of order: %s then %s", a, b)
		}
	}
}

func TestYAMLFeatures(t *testing.T) {
	src := `version: 1
defaults: &d {timeout: 1h, retries: 3}
x-common: &common {restore: [./r.sh], env: {A: "1"}}
nodes:
  - id: a
    kind: data
    plugin: exec
    with:
      <<: *common
      env: {B: "2"}
    estimate: 1.5h
    timeout: 1w
  - {id: b, kind: data, plugin: exec, with: *common, depends_on: [a], estimate: 2d12h}
`
	_, err := Parse("f.yaml", []byte(src))
	// x-common is not a field: anchors need a home in the schema.
	if err == nil || !strings.Contains(err.Error(), `f.yaml:3:1: unknown field "x-common"`) {
		t.Fatalf("got %v", err)
	}
	src = strings.Replace(src, "x-common: &common {restore: [./r.sh], env: {A: \"1\"}}\n", "", 1)
	src = strings.Replace(src, "plugin: exec\n    with:\n", "plugin: exec\n    with: &common {restore: [./r.sh], env: {A: \"1\"}}\n    title:\n", 1)
	src = strings.Replace(src, "      <<: *common\n      env: {B: \"2\"}\n", "", 1)
	src = strings.Replace(src, "title:\n", "title: merged\n", 1)
	g, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := g.Node("a")
	b, _ := g.Node("b")
	if !reflect.DeepEqual(a.With, b.With) || a.Estimate != 90*time.Minute || a.Timeout != 7*24*time.Hour || b.Estimate != 60*time.Hour {
		t.Errorf("alias: a %+v b %+v", a, b)
	}
	if g.Defaults.Timeout != time.Hour || g.Defaults.Retries != 3 || g.NodeRetries(a) != 3 || g.RetryDelay() != DefaultRetryDelay {
		t.Errorf("defaults: %+v", g.Defaults)
	}

	merge := `version: 1
nodes:
  - &base {id: a, kind: data, plugin: noop, estimate: 1h}
  - <<: *base
    id: b
    depends_on: [a]
`
	g, err = Parse("m.yaml", []byte(merge))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := g.Node("b"); b.Kind != KindData || b.Estimate != time.Hour || len(b.DependsOn) != 1 {
		t.Errorf("merge key: %+v", b)
	}
}

// TestBillionLaughs builds the classic alias bomb at several depths: each
// is refused quickly with a position.
func TestBillionLaughs(t *testing.T) {
	for _, levels := range []int{4, 9, 20} {
		var b strings.Builder
		b.WriteString("version: 1\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i < levels; i++ {
			fmt.Fprintf(&b, "l%d: &l%d [", i, i)
			for j := 0; j < 9; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "*l%d", i-1)
			}
			b.WriteString("]\n")
		}
		b.WriteString("nodes: [{id: a, kind: data, plugin: noop}]\n")
		start := time.Now()
		_, err := Parse("lol.yaml", []byte(b.String()))
		if time.Since(start) > 2*time.Second {
			t.Errorf("%d levels: took %v", levels, time.Since(start))
		}
		if levels == 4 {
			// 9^4 = 6561 values: under the budget, refused only as
			// unknown fields.
			if errors.Is(err, ErrAliasBomb) {
				t.Errorf("4 levels refused as a bomb: %v", err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrAliasBomb) || ve.Problems[0].Line < 2 {
			t.Errorf("%d levels: got %v", levels, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true}, {"0s", 0, true}, {"45s", 45 * time.Second, true}, {"1h30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true}, {"1w2d", 9 * 24 * time.Hour, true}, {"1.5h", 90 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{"", 0, false}, {"-1h", 0, false}, {"4", 0, false}, {"h", 0, false}, {"4 hours", 0, false},
		{"1y", 0, false}, {"1..5h", 0, false}, {"99999999w", 0, false}, {"1H", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 90 * time.Minute: "1h30m", 49 * time.Hour: "2d1h", 1500 * time.Millisecond: "2s", -time.Minute: "-1m"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestValidIDCharset(t *testing.T) {
	for id, want := range map[string]bool{
		"ad": true, "AD": true, "ris-to-pacs": true, "db.primary": true, "a_b": true, "0day": true,
		"": false, "-a": false, ".a": false, "_a": false, "a b": false, "a/b": false, "é": false,
		strings.Repeat("x", 128): true, strings.Repeat("x", 129): false,
	} {
		if got := validID(id); got != want || idRE.MatchString(id) != want {
			t.Errorf("validID(%q) = %v, regexp %v, want %v", id, got, idRE.MatchString(id), want)
		}
	}
}
