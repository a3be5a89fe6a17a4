package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// errNoGraphviz is returned by renderSVG when graphviz's dot is not on PATH.
var errNoGraphviz = errors.New("--format svg needs graphviz's dot, which is not on PATH: " +
	"install it with `apt-get install graphviz` (Debian, Ubuntu) or `brew install graphviz` (macOS), " +
	"or write DOT with --format dot")

// runStates reads a run from the state file at statePath (through the
// control socket of the reprise process running it when that process holds
// the file) and returns the graph the run was started with, parsed from its
// snapshot, and each node's state, for `reprise graph --run`. An empty
// runID means the newest run.
func runStates(statePath, runID string) (*graphs.Graph, map[string]string, error) {
	g, states, _, err := runStatesCertified(statePath, runID)
	return g, states, err
}

// runStatesCertified is runStates with, by zone id, how each certified
// zone was certified ("certified by NAME, TIME UTC").
func runStatesCertified(statePath, runID string) (*graphs.Graph, map[string]string, map[string]string, error) {
	r, _, closeFn, err := openReader(statePath)
	if err != nil {
		return nil, nil, nil, err
	}
	defer closeFn()
	run, err := newestRun(r, runID)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := view.ReadGraph(r, run)
	if err != nil {
		return nil, nil, nil, err
	}
	nodes, err := r.Nodes(run.ID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read nodes of run %q: %w", run.ID, err)
	}
	states := make(map[string]string, len(nodes))
	for _, n := range nodes {
		states[n.ID] = string(n.State)
	}
	certified := map[string]string{}
	for _, c := range run.Certified {
		certified[c.Zone] = fmt.Sprintf("certified by %s, %s UTC", c.By, c.At.UTC().Format("2006-01-02 15:04"))
	}
	return g, states, certified, nil
}

// newestRun returns the run named id, or without id the newest run of the
// state file.
func newestRun(r reader, id string) (state.Run, error) {
	if id != "" {
		return runByID(r, id)
	}
	return newestOf(r)
}

// renderSVG lays out a DOT graph with graphviz (`dot -Tsvg`) and writes the
// SVG to w; nothing is written when dot fails. Without dot on PATH it
// returns errNoGraphviz, which says how to install it.
func renderSVG(ctx context.Context, dot []byte, w io.Writer) error {
	path, err := exec.LookPath("dot")
	if err != nil {
		return errNoGraphviz
	}
	c := exec.CommandContext(ctx, path, "-Tsvg")
	c.Stdin = bytes.NewReader(dot)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("run dot -Tsvg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if _, err := w.Write(stdout.Bytes()); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}
