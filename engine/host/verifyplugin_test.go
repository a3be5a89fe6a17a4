package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/hosttest"
	"github.com/reprise-si/reprise/plugins/sdk"
)

// labPlugin is a lab system's plugin (LIS): it serves data and application
// nodes only; its Verify counts the rows it restored and says so as an
// output, and its Restore echoes with.expect as the output "got".
type labPlugin struct{}

var (
	_ sdk.Plugin   = labPlugin{}
	_ sdk.Verifier = labPlugin{}
)

func (labPlugin) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "lab", Version: "0.0.1", Kinds: []string{"data", "application"},
		Fields: []sdk.Field{{Name: "expect", Type: "string"}}}, nil
}

func (labPlugin) Restore(_ context.Context, req *sdk.Request, s *sdk.Stream) error {
	s.Output("restored_by", "restore")
	if v, ok := req.Config["expect"].(string); ok {
		s.Output("got", v)
	}
	return nil
}

func (labPlugin) Verify(_ context.Context, req *sdk.Request) (sdk.Result, error) {
	return sdk.Result{Message: "rows counted", Outputs: map[string]string{
		"verified_rows": "1234", "restored_by": "verify"}}, nil
}

// labHost starts a real host whose vendor plugin "lab" is the test binary
// serving labPlugin, and returns it with the graph's folder.
func labHost(t *testing.T) (*host.Host, string) {
	t.Helper()
	dir := t.TempDir()
	writeScript(t, filepath.Join(dir, "lab"), fmt.Sprintf("#!/bin/sh\n%s=lab exec %q -test.run='^$'\n", envTestPlugin, os.Args[0]))
	h := host.New(host.Options{Plugins: map[string]graphs.PluginRef{"lab": {Path: "lab"}}, GraphDir: dir,
		BuiltinCommand: hosttest.BuiltinCommand, StartTimeout: 10 * time.Second})
	t.Cleanup(func() { h.Close() })
	return h, dir
}

// TestVerifyOutputsReachDependents runs a graph through the real engine and
// a real plugin process: the outputs Verify sets are stored with the node
// (over Restore's of the same key) and resolve a dependent's placeholder.
func TestVerifyOutputsReachDependents(t *testing.T) {
	h, dir := labHost(t)
	g := enginetest.MustGraph(t, dir, `version: 1
name: lab
plugins:
  lab: { path: lab }
nodes:
  - id: lis-db
    kind: data
    plugin: lab
  - id: lis-app
    kind: application
    plugin: lab
    depends_on: [lis-db]
    with: { expect: "${nodes.lis-db.outputs.verified_rows}" }
`)
	st := enginetest.MustStore(t, dir)
	res, err := engine.New(st, h, engine.Options{Parallelism: 2}).Start(ctxT(t, time.Minute), g)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	recs, err := st.Nodes(res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	for _, r := range recs {
		if r.State != "succeeded" {
			t.Errorf("node %s: %s (%s), want succeeded", r.ID, r.State, r.LastError)
		}
		got[r.ID] = r.Outputs
	}
	if v := got["lis-db"]["verified_rows"]; v != "1234" {
		t.Errorf("lis-db outputs = %v, want verified_rows=1234 (set by Verify)", got["lis-db"])
	}
	if v := got["lis-db"]["restored_by"]; v != "verify" {
		t.Errorf("lis-db restored_by = %q, want verify (Verify's outputs win over Restore's)", v)
	}
	if v := got["lis-app"]["got"]; v != "1234" {
		t.Errorf("lis-app got = %q, want 1234 (from ${nodes.lis-db.outputs.verified_rows})", v)
	}
}

// TestKindsEnforced: a node whose kind its plugin does not declare is
// refused before anything runs (Start), reported by ValidateNodes and
// marked invalid by a dry run, each naming the file position, node, kind,
// plugin and the kinds it accepts.
func TestKindsEnforced(t *testing.T) {
	h, dir := labHost(t)
	g := enginetest.MustGraph(t, dir, `version: 1
name: lab
plugins:
  lab: { path: lab }
nodes:
  - id: lis-db
    kind: data
    plugin: lab
  - id: lis-hl7
    kind:   interface
    plugin: lab
    between: [lis-db, lis-ui]
  - id: lis-ui
    kind: application
    plugin: noop
`)
	want := []string{"graph.yaml:10:13:", `node "lis-hl7"`, `kind "interface"`, `plugin "lab"`, "data, application"}
	hasAll := func(what, s string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s = %q, want it to contain %q", what, s, w)
			}
		}
	}

	st := enginetest.MustStore(t, dir)
	_, err := engine.New(st, h, engine.Options{Parallelism: 2}).Start(ctxT(t, time.Minute), g)
	if err == nil {
		t.Fatal("run started with a node of a kind its plugin does not accept")
	}
	hasAll("Start error", err.Error())
	if !strings.Contains(err.Error(), filepath.Join(dir, "graph.yaml")) {
		t.Errorf("Start error = %q, want the graph file's path", err)
	}
	if runs, _ := st.Runs(); len(runs) != 0 {
		t.Errorf("a refused run was recorded: %v", runs)
	}

	problems := host.ValidateNodes(ctxT(t, time.Minute), h, g)
	var kindProblems []string
	for _, p := range problems {
		if p.NodeID == "lis-hl7" && p.Field == "kind" {
			kindProblems = append(kindProblems, "graph.yaml:"+p.String())
		} else if p.Field == "kind" {
			t.Errorf("unexpected kind problem: %s", p)
		}
	}
	if len(kindProblems) != 1 {
		t.Fatalf("ValidateNodes kind problems = %q, want one for lis-hl7", kindProblems)
	}
	hasAll("ValidateNodes problem", kindProblems[0])

	items, err := engine.New(enginetest.MustStore(t, t.TempDir()), h, engine.Options{Parallelism: 2}).DryRun(ctxT(t, time.Minute), g)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		invalid := it.Action == engine.ActionInvalid
		if invalid != (it.ID == "lis-hl7") {
			t.Errorf("dry run: %s is %s (%v)", it.ID, it.Action, it.Problems)
		}
		if it.ID == "lis-hl7" {
			if p := strings.Join(it.Problems, "\n"); !strings.Contains(p, `plugin "lab" does not declare kind "interface" (its kinds: data, application)`) {
				t.Errorf("dry-run problems = %q", p)
			}
		}
	}
}
