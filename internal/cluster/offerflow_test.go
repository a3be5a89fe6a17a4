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
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

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
	o := co.waitSucceeded(t, ctx, done)
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 4)
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
	if n := co.d.Arriving(); n != 0 {
		t.Errorf("the dispatcher counts %d results on their way to the engine after the run", n)
	}
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

// TestLowMaxTxnOps: with members run with --max-txn-ops=16 and the
// coordinator and agents told so (MaxTxnOps, REPRISE_ETCD_MAX_TXN_OPS on
// the command line), every transaction of the dispatch stays within it:
// 60 calls written unclaimed before any agent runs (the coordinator's
// writes spread over several transactions), claimed by two agents (16 at
// most a transaction), their results written and offered ones too. Every
// step runs once.
func TestLowMaxTxnOps(t *testing.T) {
	c := etcdtest.StartWith(t, 1, etcdtest.Options{Flags: []string{"--max-txn-ops=16"}})
	k := cluster.NewKeys("lowops")
	dir := t.TempDir()
	g := mustGraph(t, dir, noopLike(60))
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(t), Keys: k, Graph: g, AgentsOnly: true, Logger: log,
		Name: "coord", MaxTxnOps: 16,
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	type out struct {
		res engine.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := engine.New(st, d, engine.Options{Parallelism: 64}).Start(ctx, g)
		done <- out{res, err}
	}()
	cli := c.Client(t)
	waitFor(t, 60*time.Second, "the 60 calls written unclaimed", func() bool {
		resp, err := cli.Get(ctx, k.Runs(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return false
		}
		items := 0
		for _, kv := range resp.Kvs {
			if strings.HasSuffix(string(kv.Key), "/item") {
				items++
			}
		}
		return items == 20 // the first level: 20 chains of 3
	})
	var agents []*cluster.Agent
	for i := range 2 {
		a := cluster.NewAgent(cluster.AgentOptions{Client: c.Client(t), Keys: k, Name: fmt.Sprintf("a%d", i), Zone: "core", Slots: 40,
			TTL: 5 * time.Second, NewHost: localHost, Logger: log, MaxTxnOps: 16})
		if err := a.Register(ctx); err != nil {
			t.Fatal(err)
		}
		drain, stop := context.WithCancel(context.Background())
		ended := make(chan struct{})
		go func() { a.Run(drain, context.Background()); close(ended) }()
		defer func() { stop(); <-ended }()
		agents = append(agents, a)
	}
	var o out
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatal("run did not finish")
	}
	if o.err != nil || o.res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v %v; nodes %s", o.res, o.err, nodeStates(t, st, o.res.RunID))
	}
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 60)
	if agents[0].Claimed()+agents[1].Claimed() != 60 {
		t.Errorf("agents took %d and %d calls, want 60 in all", agents[0].Claimed(), agents[1].Claimed())
	}
}

// noopLike is n quick exec nodes of zone core in 20 chains, each appending
// its id to runs.txt.
func noopLike(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: lowops\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range n {
		deps := ""
		if i >= 20 {
			deps = fmt.Sprintf(", depends_on: [n%d]", i-20)
		}
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: exec, zone: core%s, with: {restore: [sh, -c, 'echo n%d >> runs.txt']}}\n", i, deps, i)
	}
	return b.String()
}

// TestAgentResultTooLarge: a step on an agent whose outputs pass what an
// agent sends through etcd (1 MiB; the graph allows 4 MiB) fails, saying
// so; the one beside it, with a large but allowed output, succeeds with it.
// Nothing hangs on etcd's request limit.
func TestAgentResultTooLarge(t *testing.T) {
	c := etcdtest.Start(t, 1)
	k := cluster.NewKeys("bigres")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: bigres
limits: {output_value: 4MiB, node_outputs: 4MiB}
defaults: {retries: 0}
zones:
  - {id: core, title: Core}
nodes:
  - {id: big, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'printf "blob=" >> "$REPRISE_OUTPUT"; head -c 1500000 /dev/zero | tr "\\0" a >> "$REPRISE_OUTPUT"; echo >> "$REPRISE_OUTPUT"']}}
  - {id: fair, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'printf "blob=" >> "$REPRISE_OUTPUT"; head -c 600000 /dev/zero | tr "\\0" b >> "$REPRISE_OUTPUT"; echo >> "$REPRISE_OUTPUT"']}}
`)
	startAgent(t, c, k, "a1", "core", 2)
	co := startCoordinator(t, c, k, dir, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := co.eng.Start(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	big, err := co.st.Node(res.RunID, "big")
	if err != nil {
		t.Fatal(err)
	}
	if big.State != state.NodeFailed || !strings.Contains(big.LastError, "more than the 1048576 an agent sends through etcd") || len(big.Outputs) != 0 {
		t.Errorf("node big: %s %q, %d outputs; want failed, its result too large for etcd", big.State, big.LastError, len(big.Outputs))
	}
	fair, err := co.st.Node(res.RunID, "fair")
	if err != nil {
		t.Fatal(err)
	}
	if fair.State != state.NodeSucceeded || len(fair.Outputs["blob"]) != 600000 {
		t.Errorf("node fair: %s %q, output of %d bytes; want succeeded with its 600000-byte output", fair.State, fair.LastError, len(fair.Outputs["blob"]))
	}
}
