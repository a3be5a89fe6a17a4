package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runGraphsCmd runs the reprise command line in-process (any command) and returns its
// stdout, stderr and exit code, mapped the way run maps them.
func runGraphsCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	code, err := exitCodeOf(root.Execute())
	if err != nil {
		stderr.WriteString("reprise: " + err.Error() + "\n")
	}
	return stdout.String(), stderr.String(), code
}

const (
	hospitalGraph = "../../examples/hospital/graph.yaml"
	smallGraph    = "../../graphs/testdata/small.yaml"
)

func TestValidateCmd(t *testing.T) {
	summary := regexp.MustCompile(`^\S+: valid — \d+ nodes \(\d+ infrastructure, \d+ application, \d+ interface, \d+ data\), \d+ edges\n$`)
	// small.yaml is a format fixture (its plugins are not real): offline.
	// The hospital is checked by its plugins too (TestMain builds them).
	for _, args := range [][]string{{smallGraph, "--offline"}, {hospitalGraph}} {
		path := args[0]
		if path == hospitalGraph && pacsBuildErr != nil {
			t.Logf("validate %s skipped: its vendor plugin is not built: %v", path, pacsBuildErr)
			continue
		}
		stdout, stderr, code := runGraphsCmd(t, append([]string{"validate"}, args...)...)
		if code != 0 || stderr != "" || !summary.MatchString(stdout) {
			t.Errorf("validate %s: code %d stdout %q stderr %q", path, code, stdout, stderr)
		}
	}
	stdout, _, _ := runGraphsCmd(t, "validate", smallGraph, "--offline")
	if want := smallGraph + ": valid — 7 nodes (3 infrastructure, 2 application, 1 interface, 1 data), 8 edges\n"; stdout != want {
		t.Errorf("got  %q\nwant %q", stdout, want)
	}
}

// TestValidateBadExamples runs validate on every file of examples/bad:
// exit 1, nothing on stdout, every stderr line FILE:LINE:COL: ….
func TestValidateBadExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/bad/*.yaml")
	more, _ := filepath.Glob("../../examples/bad/*.json")
	files = append(files, more...)
	if len(files) < 20 {
		t.Fatalf("only %d bad examples", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, stderr, code := runGraphsCmd(t, "validate", f)
			if code != 1 || stdout != "" {
				t.Fatalf("code %d stdout %q", code, stdout)
			}
			pos := regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `:\d+:\d+: \S`)
			for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
				if !pos.MatchString(line) {
					t.Errorf("line without %s:LINE:COL: %q", f, line)
				}
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	stdout, _, code := runGraphsCmd(t, "validate", "--json", "--offline", smallGraph)
	var ok struct {
		Valid bool
		Nodes int
		Kinds map[string]int
	}
	if err := json.Unmarshal([]byte(stdout), &ok); err != nil || code != 0 || !ok.Valid || ok.Nodes != 7 || ok.Kinds["infrastructure"] != 3 {
		t.Errorf("valid: code %d %+v %v\n%s", code, ok, err, stdout)
	}
	stdout, _, code = runGraphsCmd(t, "validate", "--json", "../../examples/bad/cycle.yaml")
	var bad struct {
		Valid    bool
		Problems []struct {
			Line, Col int
			Node      string
			Text      string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &bad); err != nil || code != 1 || bad.Valid || len(bad.Problems) != 1 {
		t.Fatalf("invalid: code %d %+v %v", code, bad, err)
	}
	if p := bad.Problems[0]; p.Line != 6 || p.Col != 18 || p.Node != "ad" || !strings.Contains(p.Text, "ad -> dns -> dhcp -> ad") {
		t.Errorf("problem: %+v", p)
	}
}

func TestGraphsCmdErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"missing file", []string{"validate", "nope.yaml"}, 1, `read graph "nope.yaml"`},
		{"no argument", []string{"validate"}, 2, "accepts 1 arg"},
		{"bad flag", []string{"plan", smallGraph, "--parallel", "3"}, 2, "unknown flag"},
		{"bad parallelism", []string{"plan", smallGraph, "--parallelism", "0"}, 2, "--parallelism 0: want 1 or more"},
		{"not a number", []string{"plan", smallGraph, "--parallelism", "x"}, 2, "invalid argument"},
		{"unknown target", []string{"plan", smallGraph, "--target", "pacz"}, 1, `target "pacz" (did you mean "pacs"?)`},
		{"bad format", []string{"graph", smallGraph, "--format", "png"}, 2, `--format "png": want dot, mermaid or svg`},
		{"invalid graph", []string{"plan", "../../examples/bad/self-dependency.yaml"}, 1, "self-dependency.yaml:6:18: node \"ad\": depends_on: node depends on itself"},
		{"graph of invalid", []string{"graph", "../../examples/bad/unknown-kind.yaml"}, 1, "unknown-kind.yaml:4:11:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runGraphsCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("code %d (want %d) stderr %q (want %q)", code, tc.code, stderr, tc.stderr)
			}
		})
	}
}

func TestPlanCmd(t *testing.T) {
	stdout, _, code := runGraphsCmd(t, "plan", smallGraph, "--parallelism", "1")
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	for _, want := range []string{
		"7 nodes, 8 edges, 5 waves",
		"Wave 1 — 1 node\n * network  vital  2h  infrastructure  Core network and firewalls",
		"ad   high (own normal)  4h  infrastructure  Active Directory, trusted core",
		"Critical path (marked *) — 1d11h30m, 5 nodes",
		"Estimated total at parallelism 1: 1d16h30m",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, code = runGraphsCmd(t, "plan", smallGraph, "--json", "--target", "ris", "--target", "ad")
	var p struct {
		Nodes           int        `json:"nodes"`
		Waves           [][]string `json:"waves"`
		CriticalPath    []string   `json:"critical_path"`
		EstimateSeconds float64    `json:"estimate_seconds"`
		Targets         []string   `json:"targets"`
		Details         []struct {
			ID                   string `json:"id"`
			EffectiveCriticality string `json:"effective_criticality"`
		} `json:"details"`
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil || code != 0 {
		t.Fatalf("code %d: %v\n%s", code, err, stdout)
	}
	if p.Nodes != 3 || len(p.Waves) != 3 || strings.Join(p.CriticalPath, ",") != "network,ad,ris" || p.EstimateSeconds != 7*3600 || len(p.Targets) != 2 {
		t.Errorf("plan json: %+v", p)
	}
	if p.Details[0].ID != "network" || p.Details[0].EffectiveCriticality != "vital" {
		t.Errorf("details: %+v", p.Details)
	}
}

func TestGraphCmd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "g.dot")
	_, stderr, code := runGraphsCmd(t, "graph", smallGraph, "-o", out)
	data, err := os.ReadFile(out)
	if code != 0 || err != nil || !bytes.HasPrefix(data, []byte(`digraph "small" {`)) {
		t.Fatalf("code %d stderr %q err %v\n%s", code, stderr, err, data)
	}
	stdout, _, code := runGraphsCmd(t, "graph", smallGraph, "--format", "mermaid", "--target", "ris")
	if code != 0 || !strings.Contains(stdout, "flowchart LR\n") || strings.Contains(stdout, "pacs") {
		t.Errorf("mermaid: code %d\n%s", code, stdout)
	}
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("graphviz dot not installed")
	}
	stdout, stderr, code = runGraphsCmd(t, "graph", hospitalGraph, "--format", "svg")
	if code != 0 || !strings.Contains(stdout, "<svg") {
		t.Errorf("svg: code %d stderr %q", code, stderr)
	}
}

// TestValidateAsksPlugins: without --offline, validate asks each node's
// plugin about its `with`, and a problem there fails the graph with its
// position, node and field.
func TestValidateAsksPlugins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.yaml")
	src := "version: 1\nname: t\nnodes:\n  - id: a\n    kind: infrastructure\n    plugin: exec\n    with: {restorx: [true]}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runGraphsCmd(t, "validate", path)
	if code != 1 || !strings.Contains(stderr, path+":4:5: node \"a\": with.restorx: unknown field") {
		t.Errorf("validate: code %d, stderr %q", code, stderr)
	}
	if _, _, code := runGraphsCmd(t, "validate", "--offline", path); code != 0 {
		t.Errorf("validate --offline: code %d, want 0", code)
	}
}
