package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// layered returns the YAML of a graph of layers×width noop nodes, each node
// after the first layer depending on two nodes of the layer before (as the
// bench's graph), and each node's dependencies.
func layered(layers, width int) (string, map[string][]string) {
	var b strings.Builder
	deps := map[string][]string{}
	b.WriteString("version: 1\nname: layered\nnodes:\n")
	for l := range layers {
		for k := range width {
			id := fmt.Sprintf("n%02d-%02d", l, k)
			fmt.Fprintf(&b, "  - {id: %s, kind: infrastructure, plugin: noop", id)
			if l > 0 {
				d := []string{fmt.Sprintf("n%02d-%02d", l-1, k), fmt.Sprintf("n%02d-%02d", l-1, (k+7)%width)}
				deps[id] = d
				fmt.Fprintf(&b, ", depends_on: [%s, %s]", d[0], d[1])
			}
			b.WriteString("}\n")
		}
	}
	return b.String(), deps
}

// TestBatchedStepsKeepDurability: with short steps, the scheduler starts
// them in batches and may hold a commit for the steps in flight; whatever
// it batches, every step starts only once the state file says its node is
// running (this attempt) and every dependency succeeded, and at the end
// every outcome is in the file, its journal intact.
func TestBatchedStepsKeepDurability(t *testing.T) {
	dir := t.TempDir()
	src, deps := layered(8, 25)
	g := enginetest.MustGraph(t, dir, src)
	st := enginetest.MustStore(t, dir)
	var mu sync.Mutex
	var bad []string
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		rec, err := st.Node(req.RunID, req.NodeID)
		problem := ""
		switch {
		case err != nil:
			problem = err.Error()
		case rec.State != state.NodeRunning || rec.Attempts != req.Attempt:
			problem = fmt.Sprintf("recorded %s, attempt %d", rec.State, rec.Attempts)
		}
		for _, d := range deps[req.NodeID] {
			if rec, err := st.Node(req.RunID, d); err != nil || rec.State != state.NodeSucceeded {
				problem += fmt.Sprintf("; dependency %s recorded %s (%v)", d, rec.State, err)
			}
		}
		if problem != "" {
			mu.Lock()
			bad = append(bad, req.NodeID+" started: "+problem)
			mu.Unlock()
		}
		time.Sleep(100 * time.Microsecond) // a short step, like noop's round trip
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := newEngine(t, st, h, engine.Options{Parallelism: 8}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %s, %v", res.Status, err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	for id, s := range enginetest.NodeStates(t, st, res.RunID) {
		if s != state.NodeSucceeded {
			t.Errorf("node %s recorded %s after the run, want succeeded", id, s)
		}
	}
	if rep, err := st.Verify(res.RunID); err != nil || !rep.OK {
		t.Errorf("verify: %+v, %v", rep, err)
	}
	if n, c := len(g.Nodes), st.Stats().Commits; c >= uint64(n) {
		t.Errorf("%d commits for %d nodes, want fewer (a commit carries many transitions)", c, n)
	}
}

// TestHoldEndsWhileAStepRuns: a commit held for the steps in flight is
// made at the latest one commit's time later, even when one of them runs
// on: a dependent of a node that succeeded meanwhile starts while that
// step still runs (it waits for the dependent; were the commit held until
// every step ended, neither would ever end).
func TestHoldEndsWhileAStepRuns(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: hold\nnodes:\n  - {id: slow, kind: infrastructure, plugin: noop, criticality: vital}\n")
	for k := range 60 {
		fmt.Fprintf(&b, "  - {id: q%02d, kind: infrastructure, plugin: noop}\n", k)
	}
	b.WriteString("  - {id: after, kind: infrastructure, plugin: noop, criticality: low, depends_on: [q59]}\n")
	g := enginetest.MustGraph(t, dir, b.String())
	afterStarted := make(chan struct{})
	h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		switch req.NodeID {
		case "slow":
			select {
			case <-afterStarted:
				return step.Result{Status: step.Succeeded}, nil
			case <-time.After(20 * time.Second):
				return step.Result{Status: step.Failed, Message: "the dependent of q59 never started"}, nil
			}
		case "after":
			close(afterStarted)
		default:
			time.Sleep(200 * time.Microsecond)
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := newEngine(t, enginetest.MustStore(t, dir), h, engine.Options{Parallelism: 4}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %s, %v %v", res.Status, err, res.Failed)
	}
}
