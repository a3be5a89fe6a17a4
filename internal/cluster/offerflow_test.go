package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestDrainHandsBackOffers: an agent holds calls offered to it that it has
// not started (its one slot is busy; the coordinator believes it has more)
// when it is told to stop. It finishes the step it runs, hands the others
// back in its last result batch, and stops; the coordinator offers them to
// the other agent of the zone. Every step runs once, the handed-back ones
// without a Check first (they never started).
func TestDrainHandsBackOffers(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("drainback")
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: drainback\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range 4 {
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo n%d >> runs.txt; while [ -f hold ]; do sleep 0.1; done'], check: [sh, -c, 'echo check-n%d >> checks.txt; exit 1']}}\n", i, i, i)
	}
	g := mustGraph(t, dir, b.String())
	if err := os.WriteFile(filepath.Join(dir, "hold"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	slow := startAgent(t, c, k, "slow", "core", 1)
	co := startCoordinator(t, c, k, dir, g, false)
	if !co.d.SetAgentSlots("slow", 8) {
		t.Fatal("the coordinator does not see agent slow")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	done := co.startRun(ctx, g)
	waitFor(t, 60*time.Second, "agent slow runs a step", func() bool {
		return len(counts(t, filepath.Join(dir, "runs.txt"))) == 1
	})
	other := startAgent(t, c, k, "other", "core", 4)
	slow.drain() // it hands back what it has not started once its step ends
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(filepath.Join(dir, "hold")); err != nil {
		t.Fatal(err)
	}
	var o runOut
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatal("run did not finish")
	}
	if o.err != nil || o.st != state.RunSucceeded {
		t.Fatalf("run: %s %v; nodes %s", o.st, o.err, nodeStates(t, co.st, o.runID))
	}
	got := counts(t, filepath.Join(dir, "runs.txt"))
	for i := range 4 {
		if n := got[fmt.Sprintf("n%d", i)]; n != 1 {
			t.Errorf("n%d ran %d times, want once: %v", i, n, got)
		}
	}
	if checks := counts(t, filepath.Join(dir, "checks.txt")); len(checks) != 0 {
		t.Errorf("checks %v: a step handed back before it started needs no Check", checks)
	}
	if slow.Claimed() != 1 || other.Claimed() != 3 {
		t.Errorf("slow took %d calls and other %d, want 1 and 3", slow.Claimed(), other.Claimed())
	}
	select {
	case err := <-slow.done:
		slow.done <- err
		if err != nil {
			t.Errorf("agent slow: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("agent slow did not stop after handing back its offers")
	}
	noWorkLeft(t, c, k, o.runID)
}

// TestOfferedStepWithdrawnOnTimeout: an offered step outlives its node's
// timeout. The coordinator withdraws the call; the agent cancels the step
// (its process is killed, it never finishes) and counts the call answered
// in its offer batch: the batch and the withdrawal go from etcd, nothing
// of the run's work is left behind.
func TestOfferedStepWithdrawnOnTimeout(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("withdraw")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: withdraw
defaults: {retries: 0}
zones:
  - {id: core, title: Core}
nodes:
  - {id: slow, kind: application, plugin: exec, zone: core, timeout: 2s, with: {restore: [sh, -c, 'echo started >> runs.txt; sleep 20; echo finished >> runs.txt']}}
`)
	a := startAgent(t, c, k, "a1", "core", 2)
	co := startCoordinator(t, c, k, dir, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	res, err := co.eng.Start(ctx, g)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunFailed {
		t.Fatalf("run %s, want failed (the step timed out); nodes %s", res.Status, nodeStates(t, co.st, res.RunID))
	}
	if took > 15*time.Second {
		t.Errorf("the run took %v: the step was not cut at its 2 s timeout", took)
	}
	rec, err := co.st.Node(res.RunID, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != state.NodeFailed || !strings.Contains(strings.ToLower(rec.LastError), "timeout") && !strings.Contains(strings.ToLower(rec.LastError), "deadline") && !strings.Contains(strings.ToLower(rec.LastError), "timed out") {
		t.Errorf("node slow: %s %q %q, want failed on its timeout", rec.State, rec.LastError, "")
	}
	waitFor(t, 15*time.Second, "the agent stops the step", func() bool { return a.Busy() == 0 })
	noWorkLeft(t, c, k, res.RunID)
	if got := counts(t, filepath.Join(dir, "runs.txt")); got["finished"] != 0 || got["started"] != 1 {
		t.Errorf("runs.txt %v: the step started once and was never let finish", got)
	}
}

// noWorkLeft waits until the run's offer batches, result batches and
// withdrawals are all gone from etcd.
func noWorkLeft(t *testing.T, c *etcdtest.Cluster, k cluster.Keys, run string) {
	t.Helper()
	cli := c.Client(t)
	var left []string
	defer func() {
		if t.Failed() {
			t.Logf("left in etcd: %v", left)
		}
	}()
	waitFor(t, 15*time.Second, "the run's offers, results and withdrawals gone from etcd", func() bool {
		left = nil
		for _, kind := range []string{"o/", "b/", "x/"} {
			resp, err := cli.Get(context.Background(), k.Run(run)+kind, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				return false
			}
			for _, kv := range resp.Kvs {
				left = append(left, string(kv.Key))
			}
		}
		return len(left) == 0
	})
}

// TestOfferedStepStreamsEvents: an offered step's log lines reach the
// coordinator while it still runs (streamed, fenced by its offer batch),
// not only with its result.
func TestOfferedStepStreamsEvents(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("stream")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: stream
zones:
  - {id: core, title: Core}
nodes:
  - {id: long, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo halfway there; sleep 3; echo done']}}
`)
	startAgent(t, c, k, "a1", "core", 2)
	var mu sync.Mutex
	var logAt, endAt time.Time
	co := startCoordinator(t, c, k, dir, g, false, func(o *engine.Options) {
		o.OnEvent = func(ev engine.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ev.Type == engine.EventNodeLog && strings.Contains(ev.Message, "halfway there") && logAt.IsZero():
				logAt = time.Now()
			case ev.Type == engine.EventNodeFinished && ev.NodeID == "long":
				endAt = time.Now()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := co.eng.Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logAt.IsZero() || endAt.IsZero() {
		t.Fatalf("log line seen at %v, node finished at %v: want both", logAt, endAt)
	}
	if gap := endAt.Sub(logAt); gap < 1500*time.Millisecond {
		t.Errorf("the log line came %v before the step ended (it sleeps 3 s after it): not streamed while it ran", gap)
	}
}
