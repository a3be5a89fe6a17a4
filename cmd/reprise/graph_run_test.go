package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestRunStates(t *testing.T) {
	path, runID := mustReportState(t)
	want := map[string]string{"ad": "succeeded", "dpi": "succeeded", "lis": "failed", "reentry": "blocked"}
	for _, id := range []string{"", runID} {
		g, states, err := runStates(path, id)
		if err != nil {
			t.Fatalf("runStates(%q): %v", id, err)
		}
		if g.Name != "report-cmd" || len(g.Nodes) != 4 {
			t.Errorf("runStates(%q): graph %q with %d nodes; want report-cmd with 4", id, g.Name, len(g.Nodes))
		}
		if !reflect.DeepEqual(states, want) {
			t.Errorf("runStates(%q): states %v; want %v", id, states, want)
		}
	}
	_, states, err := runStates(path, "20261127-old")
	if err != nil || states["lis"] != "pending" {
		t.Errorf("older run: %v, %v; want lis pending", states, err)
	}
	if _, _, err := runStates(path, "nope"); err == nil || !strings.Contains(err.Error(), `run "nope"`) {
		t.Errorf("unknown run: err %v", err)
	}
}

const smallDOT = "digraph g { ad -> dpi; ad [label=\"Active Directory\"]; }\n"

func TestRenderSVG(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("graphviz's dot is not installed but CI=true: .ci/run installs graphviz")
		}
		t.Skip("graphviz's dot is not installed (apt-get install graphviz)")
	}
	var buf bytes.Buffer
	if err := renderSVG(context.Background(), []byte(smallDOT), &buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "<svg") || !strings.Contains(out, "Active Directory") {
		t.Errorf("not an SVG of the graph:\n%.500s", out)
	}
	buf.Reset()
	err := renderSVG(context.Background(), []byte("digraph { ad -> }"), &buf)
	if err == nil || !strings.Contains(err.Error(), "run dot -Tsvg") || buf.Len() != 0 {
		t.Errorf("bad DOT: err %v, %d bytes written; want an error from dot and nothing written", err, buf.Len())
	}
}

func TestRenderSVGWithoutGraphviz(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var buf bytes.Buffer
	err := renderSVG(context.Background(), []byte(smallDOT), &buf)
	if !errors.Is(err, errNoGraphviz) {
		t.Fatalf("err = %v; want errNoGraphviz", err)
	}
	for _, want := range []string{"apt-get install graphviz", "brew install graphviz", "--format dot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
