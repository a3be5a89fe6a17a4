package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/graphs"
)

// TestGraphCommandsDirect calls plan, validate and graph's logic without
// cobra: results as the commands print them, usage errors by type, a graph
// with problems as a *graphs.ValidationError.
func TestGraphCommandsDirect(t *testing.T) {
	ctx := context.Background()
	p, err := runPlan(ctx, planOptions{File: smallGraph, Parallelism: 8})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil || text.Len() == 0 {
		t.Errorf("plan text: %v", err)
	}
	if _, err := runPlan(ctx, planOptions{File: smallGraph, Parallelism: 0}); exitOf(err) != exitUsage {
		t.Errorf("plan --parallelism 0: exit %d (%v), want 2", exitOf(err), err)
	}
	if _, err := runPlan(ctx, planOptions{File: smallGraph, Parallelism: 8, Targets: []string{"nope"}}); exitOf(err) != exitError || !strings.Contains(err.Error(), "nope") {
		t.Errorf("plan --target nope: exit %d (%v), want 1 naming it", exitOf(err), err)
	}

	v := runValidate(ctx, validateOptions{File: smallGraph, Offline: true})
	if v.Err != nil || v.Graph == nil || len(v.Problems) != 0 {
		t.Fatalf("validate: %+v", v)
	}
	if got, want := validSummary(v.File, v.Graph), smallGraph+": valid — 7 nodes (3 infrastructure, 2 application, 1 interface, 1 data), 8 edges"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nname: x\nnodes:\n  - {id: a, kind: aplication, plugin: noop}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v = runValidate(ctx, validateOptions{File: bad})
	var ve *graphs.ValidationError
	if !errors.As(v.Err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("validate bad.yaml: %v", v.Err)
	}
	var stderr bytes.Buffer
	if code := exitOf(reportGraphError(&stderr, v.Err)); code != exitError || !strings.HasPrefix(stderr.String(), bad+":4:") {
		t.Errorf("validate bad.yaml: exit %d, stderr %q", code, stderr.String())
	}

	dot, err := runGraph(ctx, graphOptions{File: smallGraph, Format: "dot"})
	if err != nil || !bytes.HasPrefix(dot, []byte("digraph")) {
		t.Errorf("graph: %v\n%.100s", err, dot)
	}
	mermaid, err := runGraph(ctx, graphOptions{File: smallGraph, Format: "mermaid"})
	if err != nil || !bytes.Contains(mermaid, []byte("\nflowchart LR\n")) {
		t.Errorf("graph --format mermaid: %v\n%.100s", err, mermaid)
	}
	for _, opts := range []graphOptions{{File: smallGraph, Format: "png"}, {Format: "dot"}, {File: smallGraph, Format: "dot", RunSet: true}} {
		if _, err := runGraph(ctx, opts); exitOf(err) != exitUsage {
			t.Errorf("graph %+v: exit %d (%v), want 2", opts, exitOf(err), err)
		}
	}
	if _, err := runGraph(ctx, graphOptions{File: bad, Format: "dot"}); !errors.As(err, &ve) {
		t.Errorf("graph bad.yaml: %v, want its problems", err)
	}
}

// testGraphOfRunDirect draws the graph a run started with, coloured by
// its nodes' states, through runGraph (TestViewsDirect).
func testGraphOfRunDirect(t *testing.T, d directDir) {
	dot, err := runGraph(context.Background(), graphOptions{RunSet: true, Run: "latest", StatePath: d.state, Format: "dot"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"broken"`, "failed", "blocked", "succeeded"} {
		if !bytes.Contains(dot, []byte(want)) {
			t.Errorf("dot of the run lacks %q:\n%s", want, dot)
		}
	}
}

// TestOperatorsDirect adds, lists and revokes operators through their
// runX functions on a real state file.
func TestOperatorsDirect(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reprise.db")
	op, token, err := runOperatorsAdd(ctx, operatorsOptions{StatePath: path, Name: "alice", Role: "admin"})
	if err != nil || op.Name != "alice" || op.Role != "admin" || len(token) < 20 {
		t.Fatalf("add: %+v, %d-char token, %v", op, len(token), err)
	}
	for _, opts := range []operatorsOptions{{Name: "bob"}, {Name: "bob", Role: "king"}, {Name: "bad name!", Role: "viewer"}} {
		opts.StatePath = path
		if _, _, err := runOperatorsAdd(ctx, opts); exitOf(err) != exitUsage {
			t.Errorf("add %+v: exit %d (%v), want 2", opts, exitOf(err), err)
		}
	}
	ops, err := runOperatorsList(ctx, operatorsOptions{StatePath: path})
	if err != nil || len(ops) != 1 || ops[0].Name != "alice" {
		t.Fatalf("list: %+v, %v", ops, err)
	}
	if strings.Contains(ops[0].Hash, token) || ops[0].Hash == "" {
		t.Error("the state file keeps the token")
	}
	if _, err := runOperatorsRevoke(ctx, operatorsOptions{StatePath: path, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if ops, err := runOperatorsList(ctx, operatorsOptions{StatePath: path}); err != nil || len(ops) != 0 {
		t.Errorf("list after revoke: %+v, %v", ops, err)
	}
	if _, err := runOperatorsRevoke(ctx, operatorsOptions{StatePath: path, Name: "alice"}); err == nil || !strings.Contains(err.Error(), "reprise operators list") {
		t.Errorf("revoke twice: %v", err)
	}
}

// TestPluginsNewDirect writes a Python plugin's skeleton through
// runPluginsNew; bad names and languages are usage errors.
func TestPluginsNewDirect(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "lab")
	got, err := runPluginsNew(ctx, pluginsNewOptions{Name: "lab", Lang: "python", Dir: dir})
	if err != nil || got != dir {
		t.Fatalf("plugins new: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "reprise-plugin-lab")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("the plugin is not written executable: %v", err)
	}
	for _, opts := range []pluginsNewOptions{{Name: "Lab", Lang: "go"}, {Name: "exec", Lang: "go"}, {Name: "lab", Lang: "rust"}} {
		if _, err := runPluginsNew(ctx, opts); exitOf(err) != exitUsage {
			t.Errorf("plugins new %+v: exit %d (%v), want 2", opts, exitOf(err), err)
		}
	}
	if _, err := runPluginsNew(ctx, pluginsNewOptions{Name: "lab", Lang: "python", Dir: dir}); exitOf(err) != exitError || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("plugins new into a full folder: %v", err)
	}
}
