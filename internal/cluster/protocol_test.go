package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// observed is a logger whose lines (info up) the test reads, also written
// to the test's log (warnings up).
func observed(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	tl := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	return zap.New(zapcore.NewTee(core, tl.Core())), logs
}

// linesWith returns the messages of logs that hold s.
func linesWith(logs *observer.ObservedLogs, s string) []string {
	var out []string
	for _, e := range logs.All() {
		if strings.Contains(e.Message, s) {
			out = append(out, e.Message)
		}
	}
	return out
}

// register writes an agent's registration as value val under a new
// lease, as an agent of another build would.
func register(t *testing.T, cli *clientv3.Client, k cluster.Keys, name, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, k.Agent(name), val, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(context.Background())
	if _, err := cli.KeepAlive(kctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); cli.Revoke(context.Background(), lease.ID) })
}

// TestProtocolOffersOnlyCompatibleAgents: a coordinator offers nothing to
// agents of another protocol (one from before protocol versions, whose
// registration has no version, with the most free slots of its zone; one
// of a later version, alone in its zone) and logs each once; the
// compatible agent of the first zone runs its steps, and the steps of the
// zone left with no compatible agent wait, as for a zone without agents
// (--agents-only: written unclaimed), until one comes. The listing, as
// ListAgents and as `reprise agent list`, says which are incompatible.
func TestProtocolOffersOnlyCompatibleAgents(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("pv")
	cli := c.Client(t)
	dir := t.TempDir()
	register(t, cli, k, "old-1", `{"name":"old-1","zone":"core","slots":100,"host":"h","pid":1,"started":"2026-01-02T03:04:05Z"}`)
	future, _ := json.Marshal(cluster.AgentInfo{Name: "future-1", Zone: "edge", Slots: 4, Protocol: cluster.ProtocolVersion + 1})
	register(t, cli, k, "future-1", string(future))
	core := startAgent(t, c, k, "core-1", "core", 2)
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// start runs g in the background, every step through agents, with a
	// coordinator logging to logs.
	start := func(g *graphs.Graph) (*cluster.Dispatcher, *observer.ObservedLogs, <-chan runOut) {
		log, logs := observed(t)
		d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(t), Keys: k, Graph: g, AgentsOnly: true, Logger: log, Name: "coord-" + g.Name,
			Journal: func(ctx context.Context, run string, e *state.Entry) error {
				return st.Apply(ctx, state.Change{RunID: run, Entry: e})
			}})
		t.Cleanup(func() { d.Close() })
		co := &coordinator{st: st, d: d, eng: engine.New(st, d, engine.Options{Parallelism: 8})}
		return d, logs, co.startRun(ctx, g)
	}
	stop := record(t, cli, k.Root)

	// Zone core: core-1 runs every step, old-1 (most free slots) none.
	g := mustGraph(t, dir, zoneGraph(6, ""))
	d, logs, done := start(g)
	if got := d.Agents(); len(got) != 1 || got["core"] != 1 {
		t.Errorf("agents counted per zone: %v, want core-1 alone", got)
	}
	(&coordinator{st: st}).waitSucceeded(t, ctx, done)
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 6)
	if core.Claimed() != 6 {
		t.Errorf("core-1 took %d steps, want the 6 of zone core", core.Claimed())
	}
	for name, want := range map[string]string{
		"old-1":    "agent old-1 (zone core) speaks protocol 0 (a build from before protocol versions), this coordinator protocol 1: not offered any step; upgrade it",
		"future-1": fmt.Sprintf("agent future-1 (zone edge) speaks protocol %d, this coordinator protocol %d: not offered any step; upgrade it", cluster.ProtocolVersion+1, cluster.ProtocolVersion),
	} {
		if got := linesWith(logs, "agent "+name+" "); len(got) != 1 || got[0] != want {
			t.Errorf("the coordinator's lines on %s: %q, want once %q", name, got, want)
		}
	}

	// Zone edge, served by future-1 alone: its step waits, written
	// unclaimed, until a compatible agent comes.
	edir := t.TempDir()
	eg := mustGraph(t, edir, `version: 1
name: edge
zones:
  - {id: edge, title: Edge}
nodes:
  - {id: e0, kind: application, plugin: exec, zone: edge, with: {restore: [sh, -c, 'echo e0 >> runs.txt']}}
`)
	_, _, edone := start(eg)
	waitFor(t, 30*time.Second, "e0 written unclaimed", func() bool {
		resp, err := cli.Get(ctx, k.Runs(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if strings.HasSuffix(string(kv.Key), "/n/e0/item") {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second)
	select {
	case o := <-edone:
		t.Fatalf("the run of zone edge ended with an incompatible agent alone there: %s %v", o.st, o.err)
	default:
	}
	startAgent(t, c, k, "edge-1", "edge", 1)
	(&coordinator{st: st}).waitSucceeded(t, ctx, edone)
	ranOnce(t, filepath.Join(edir, "runs.txt"), "e", 1)
	for _, re := range stop() {
		for _, ev := range re.evs {
			key := string(ev.Kv.Key)
			if strings.Contains(key, "/o/old-1/") || strings.Contains(key, "/o/future-1/") {
				t.Errorf("an offer batch was written for an agent of another protocol: %s", key)
			}
		}
	}

	agents, err := cluster.ListAgents(ctx, cli, k)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, ai := range agents {
		listed = append(listed, fmt.Sprintf("%s %s %v", ai.Zone, ai.Name, ai.Compatible()))
	}
	if got, want := strings.Join(listed, ", "), "core core-1 true, core old-1 false, edge edge-1 true, edge future-1 false"; got != want {
		t.Errorf("ListAgents: %s, want %s", got, want)
	}
	if testing.Short() {
		return
	}
	p := reprise(t, "agent", "list", "--state", c.URL("pv"))
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("reprise agent list: exit %d:\n%s", code, p.output())
	}
	out := p.output()
	for _, want := range []string{
		"NAME", "PROTOCOL", "STATE",
		"incompatible: speaks protocol 0 (a build from before protocol versions), this build 1: offered no step; upgrade it",
		fmt.Sprintf("incompatible: speaks protocol %d, this build %d", cluster.ProtocolVersion+1, cluster.ProtocolVersion),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("reprise agent list lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "core-1 ") && !strings.HasSuffix(strings.TrimSpace(l), "ready") {
			t.Errorf("core-1 listed %q, want ready", l)
		}
	}
}

// TestAgentRefusesOtherProtocol: an agent takes nothing a coordinator of
// another protocol wrote (items written unclaimed, offer batches for it,
// one it cannot even decode), logs it once per coordinator, and still
// takes an item of its own protocol.
func TestAgentRefusesOtherProtocol(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("pa")
	cli := c.Client(t)
	log, logs := observed(t)
	a := startAgentWith(t, c, cluster.AgentOptions{Keys: k, Name: "core-1", Zone: "core", Slots: 4, Logger: log})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	later := cluster.ProtocolVersion + 1
	item := func(node, by string, proto int) string {
		b, _ := json.Marshal(cluster.Item{Call: "call-" + node, Protocol: proto, Op: "restore", Zone: "core", Graph: "nope", GraphFile: "g.yaml",
			By: by, Req: step.Request{RunID: "r1", NodeID: node}})
		return string(b)
	}
	lease := a.Lease()
	batch, _ := json.Marshal(cluster.OfferBatch{By: "future-coord", Protocol: later, Run: "r1",
		Items: []cluster.Item{{Call: "call-n2", Op: "restore", Req: step.Request{NodeID: "n2"}}, {Call: "call-n3", Op: "restore", Req: step.Request{NodeID: "n3"}}}})
	ops := []clientv3.Op{
		clientv3.OpPut(k.Item("r1", "n0"), item("n0", "future-coord", later)),
		// Written by a build from before versions: no "protocol".
		clientv3.OpPut(k.Item("r1", "n1"), strings.Replace(item("n1", "old-coord", 0), `"protocol":0,`, "", 1)),
		clientv3.OpPut(k.Offer("r1", "core-1", "future.1"), string(batch), clientv3.WithLease(lease)),
		// A later version's batch this one cannot decode.
		clientv3.OpPut(k.Offer("r1", "core-1", "future.2"), fmt.Sprintf(`{"by":"future-coord","protocol":%d,"items":"a new form"}`, later), clientv3.WithLease(lease)),
	}
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the agent logs both coordinators", func() bool { return len(linesWith(logs, "speaks protocol")) >= 2 })
	time.Sleep(2 * time.Second) // time to take them, if it would
	if n := a.Claimed(); n != 0 {
		t.Errorf("the agent took %d steps of coordinators of another protocol", n)
	}
	left, err := cli.Get(ctx, k.Run("r1"), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Kvs) != 4 {
		t.Errorf("the agent wrote under the run of coordinators of another protocol: %s", left.Kvs)
	}
	want := []string{
		fmt.Sprintf("coordinator future-coord speaks protocol %d, this agent protocol %d: taking none of its steps; run coordinator and agent of the same protocol (upgrade the older)", later, cluster.ProtocolVersion),
		fmt.Sprintf("coordinator old-coord speaks protocol 0 (a build from before protocol versions), this agent protocol %d: taking none of its steps; run coordinator and agent of the same protocol (upgrade the older)", cluster.ProtocolVersion),
	}
	got := linesWith(logs, "speaks protocol")
	if len(got) != 2 || !(got[0] == want[0] && got[1] == want[1] || got[0] == want[1] && got[1] == want[0]) {
		t.Errorf("the agent's lines: %q, want each once: %q", got, want)
	}
	if bad := linesWith(logs, "unreadable offer batch"); len(bad) != 0 {
		t.Errorf("a later version's batch reported unreadable rather than of another protocol: %q", bad)
	}
	// Its own protocol's item it takes (the graph is not published: the
	// step fails, which does not matter here).
	if _, err := cli.Put(ctx, k.Item("r1", "n4"), item("n4", "coord-now", cluster.ProtocolVersion)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the agent takes an item of its protocol", func() bool { return a.Claimed() == 1 })
}
