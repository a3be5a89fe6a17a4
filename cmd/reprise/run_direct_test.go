package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
)

// directGraph has a vital root, a node that fails and one it blocks.
const directGraph = `version: 1
name: lab
defaults: {retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: exec, criticality: vital, with: {restore: [sh, -c, "echo ad >> done.txt"]}}
  - {id: lis, kind: application, plugin: noop, depends_on: [ad]}
  - {id: broken, kind: application, plugin: exec, depends_on: [ad], with: {restore: [sh, -c, "echo down >&2; exit 3"]}}
  - {id: report, kind: data, plugin: noop, depends_on: [broken]}
`

// directDir is a test's folder with a graph file and a state file.
type directDir struct {
	dir, graph, state string
}

func mustDirectDir(t *testing.T, graph string) directDir {
	t.Helper()
	dir := t.TempDir()
	g := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(g, []byte(graph), 0o644); err != nil {
		t.Fatal(err)
	}
	return directDir{dir: dir, graph: g, state: filepath.Join(dir, "reprise.db")}
}

// session is the options of a quiet session on the folder's state file.
func (d directDir) session() sessionOptions {
	return sessionOptions{StatePath: d.state, Parallelism: 4, Quiet: true}
}

// bufs is a command's stdout and stderr, in memory.
type bufs struct{ out, err bytes.Buffer }

func (b *bufs) stdio() stdio { return stdio{Out: &b.out, Err: &b.err} }

// exitOf is the exit code err maps to.
func exitOf(err error) int {
	code, _ := exitCodeOf(err)
	return code
}

// TestRunRunDirect runs a graph through runRun, without cobra: the outcome
// counts the nodes, prints as run prints it and exits 3; a second run of
// the unfinished graph is refused (exit 2) naming the run, unless New.
func TestRunRunDirect(t *testing.T) {
	d := mustDirectDir(t, directGraph)
	var b bufs
	out, err := runRun(context.Background(), runOptions{sessionOptions: d.session(), File: d.graph}, b.stdio())
	if err != nil {
		t.Fatalf("runRun: %v\nstderr:\n%s", err, b.err.String())
	}
	res := out.Result
	if res.Status != state.RunFailed || res.Total != 4 || res.Counts[state.NodeSucceeded] != 2 ||
		res.Counts[state.NodeFailed] != 1 || res.Counts[state.NodeBlocked] != 1 {
		t.Fatalf("outcome: status %s, total %d, counts %v; want failed, 4, 2 succeeded, 1 failed, 1 blocked", res.Status, res.Total, res.Counts)
	}
	if len(res.Failed) != 1 || res.Failed[0].ID != "broken" {
		t.Errorf("failed: %+v, want broken", res.Failed)
	}
	if b.err.Len() != 0 {
		t.Errorf("quiet run wrote on stderr: %q", b.err.String())
	}
	var printed bytes.Buffer
	if code := exitOf(printOutcome(&printed, res, false)); code != exitFailedNodes {
		t.Errorf("exit %d, want %d", code, exitFailedNodes)
	}
	for _, want := range []string{"run " + res.RunID + " failed: 2/4 nodes done\n", "  failed   broken: ", "  blocked  1 node(s) behind the failures\n", "resume with `reprise resume " + res.RunID + "`\n"} {
		if !strings.Contains(printed.String(), want) {
			t.Errorf("printed outcome lacks %q:\n%s", want, printed.String())
		}
	}

	_, err = runRun(context.Background(), runOptions{sessionOptions: d.session(), File: d.graph}, b.stdio())
	if exitOf(err) != exitUsage || !strings.Contains(err.Error(), "run "+res.RunID+" of lab is unfinished (failed, 2/4 nodes done)") {
		t.Fatalf("second run: exit %d, %v; want exit 2 naming run %s", exitOf(err), err, res.RunID)
	}
	b = bufs{}
	again, err := runRun(context.Background(), runOptions{sessionOptions: d.session(), File: d.graph, New: true}, b.stdio())
	if err != nil || again.Result.RunID == res.RunID || again.Result.Status != state.RunFailed {
		t.Fatalf("run --new: %+v, %v; want a new failed run", again.Result, err)
	}
	if want := "note: started while run " + res.RunID + " was unfinished (failed, 2/4 nodes done); a new run starts (--new)\n"; b.err.String() != want {
		t.Errorf("stderr %q, want %q", b.err.String(), want)
	}
}

// TestRunResumeDirect resumes a failed run with an edited graph through
// runResume: the dry run plans without writing, the resume prints the plan
// first and runs what the edit changed, keeping what was done.
func TestRunResumeDirect(t *testing.T) {
	d := mustDirectDir(t, directGraph)
	ctx := context.Background()
	first, err := runRun(ctx, runOptions{sessionOptions: d.session(), File: d.graph}, (&bufs{}).stdio())
	if err != nil || first.Result.Status != state.RunFailed {
		t.Fatalf("run: %+v, %v", first.Result, err)
	}
	fixed := filepath.Join(d.dir, "fixed.yaml")
	if err := os.WriteFile(fixed, []byte(strings.Replace(directGraph, `echo down >&2; exit 3`, `echo up`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = runResume(ctx, resumeOptions{sessionOptions: d.session(), DryRun: true}, (&bufs{}).stdio())
	if exitOf(err) != exitUsage {
		t.Errorf("resume --dry-run without --graph: exit %d (%v), want 2", exitOf(err), err)
	}
	plan, err := runResume(ctx, resumeOptions{sessionOptions: d.session(), GraphFile: fixed, DryRun: true}, (&bufs{}).stdio())
	if err != nil || plan.Edit == nil || plan.EditRun.ID != first.Result.RunID {
		t.Fatalf("resume --dry-run: %+v, %v", plan, err)
	}
	var printed bytes.Buffer
	if err := printEditPlan(&printed, plan, false); err != nil || !strings.HasSuffix(printed.String(), "dry run: nothing was changed\n") {
		t.Errorf("printed plan: %v\n%s", err, printed.String())
	}

	var b bufs
	out, err := runResume(ctx, resumeOptions{sessionOptions: d.session(), GraphFile: fixed}, b.stdio())
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, b.err.String())
	}
	if res := out.Result; res.RunID != first.Result.RunID || res.Status != state.RunSucceeded {
		t.Fatalf("resume: run %s %s, want %s succeeded", res.RunID, res.Status, first.Result.RunID)
	}
	if want := "plan of resuming run " + first.Result.RunID + " of lab with "; !strings.HasPrefix(b.out.String(), want) {
		t.Errorf("resume printed %q first, want %q", b.out.String(), want)
	}
	if code := exitOf(printOutcome(&bytes.Buffer{}, out.Result, true)); code != exitOK {
		t.Errorf("exit %d, want 0", code)
	}
	// Nothing done ran again: ad's restore appended once.
	if got, _ := os.ReadFile(filepath.Join(d.dir, "done.txt")); string(got) != "ad\n" {
		t.Errorf("done.txt %q: a done node ran again", got)
	}

	_, err = runResume(ctx, resumeOptions{sessionOptions: d.session()}, (&bufs{}).stdio())
	if err == nil || !strings.Contains(err.Error(), "no unfinished run in "+d.state) {
		t.Errorf("resume with nothing unfinished: %v", err)
	}
}

// TestRunDryRunDirect plans through runRun and writes nothing; an invalid
// node makes the printed plan exit 1.
func TestRunDryRunDirect(t *testing.T) {
	d := mustDirectDir(t, directGraph+`  - {id: bad, kind: data, plugin: exec, with: {}}
`)
	out, err := runRun(context.Background(), runOptions{sessionOptions: d.session(), File: d.graph, DryRun: true, Drill: true}, (&bufs{}).stdio())
	if err != nil || out.Plan == nil {
		t.Fatalf("dry run: %v", err)
	}
	if p := out.Plan; p.Graph != "lab" || !p.Drill || len(p.Nodes) != 5 || p.Invalid != 1 {
		t.Errorf("plan: graph %s, drill %v, %d nodes, %d invalid; want lab, true, 5, 1", p.Graph, p.Drill, len(p.Nodes), p.Invalid)
	}
	if _, err := os.Stat(d.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run wrote the state file: %v", err)
	}
	var printed bytes.Buffer
	if code := exitOf(printDryRun(&printed, out.Plan, false)); code != exitError || !strings.Contains(printed.String(), "dry run of lab (drill): 5 nodes, 1 invalid; nothing was written\n") {
		t.Errorf("printed dry run: exit %d\n%s", code, printed.String())
	}
}
