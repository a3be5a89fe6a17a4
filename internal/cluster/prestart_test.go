package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// etcdCoordinator is an engine over an etcd state on the agents' cluster,
// whose dispatcher offers steps in the engine's commits (Prestart).
type etcdCoordinator struct {
	st *etcdstate.Store
	d  *cluster.Dispatcher
	e  *engine.Engine
	k  cluster.Keys
	u  etcdconn.URL
}

func startEtcdCoordinator(t *testing.T, c *etcdtest.Cluster, prefix string, g *graphs.Graph, maxOps ...int) *etcdCoordinator {
	t.Helper()
	u, err := etcdconn.Parse(c.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	limit := 0
	if len(maxOps) > 0 {
		limit = maxOps[0]
	}
	st := etcdstate.New(c.Client(t), u, etcdstate.Options{MaxTxnOps: limit})
	t.Cleanup(func() { st.Close() })
	k := cluster.NewKeys(u.Root())
	d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(t), Keys: k, Graph: g, AgentsOnly: true, Prestart: true, MaxTxnOps: limit,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Name: "coord",
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	t.Cleanup(func() { d.Close() })
	return &etcdCoordinator{st: st, d: d, e: engine.New(st, d, engine.Options{Parallelism: 8}), k: k, u: u}
}

// runOnce runs g to its end, and fails the test unless it succeeded with
// each of its n steps run once (runs.txt in dir).
func (co *etcdCoordinator) runOnce(t *testing.T, g *graphs.Graph, dir string, n int) engine.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := co.e.Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v", res, err)
	}
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", n)
	return res
}

// revEvents are the events of one revision.
type revEvents struct {
	rev int64
	evs []*clientv3.Event
}

// record watches every key under prefix from now on until stop.
func record(t *testing.T, cli *clientv3.Client, prefix string) (stop func() []revEvents) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	byRev := map[int64][]*clientv3.Event{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wr := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			mu.Lock()
			for _, ev := range wr.Events {
				byRev[ev.Kv.ModRevision] = append(byRev[ev.Kv.ModRevision], ev)
			}
			mu.Unlock()
		}
	}()
	return func() []revEvents {
		time.Sleep(200 * time.Millisecond) // the last events reach the watch
		cancel()
		<-done
		var out []revEvents
		for rev, evs := range byRev {
			out = append(out, revEvents{rev, evs})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].rev < out[j].rev })
		return out
	}
}

// TestOffersGoWithTheirStart: with the state on the agents' cluster, the
// steps of a commit that starts them are offered in that very
// transaction, and no step is ever offered before its start is durable.
func TestOffersGoWithTheirStart(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(12, ""))
	co := startEtcdCoordinator(t, c, "t1", g)
	startAgent(t, c, co.k, "core-1", "core", 4)
	startAgent(t, c, co.k, "core-2", "core", 4)
	stop := record(t, c.Client(t), co.u.Root())
	res := co.runOnce(t, g, dir, 12)
	revs := stop()
	if n := co.d.Arriving(); n != 0 {
		t.Errorf("the dispatcher counts %d results on their way to the engine after the run", n)
	}
	// The work is consumed (its clean-up rode in the engine's commits,
	// or went after): nothing is left under the run.
	co.d.Close()
	if left, err := c.Client(t).Get(context.Background(), co.k.Run(res.RunID), clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil || left.Count != 0 {
		t.Errorf("work left in etcd after the run: %v, %v", left, err)
	}

	// The seq of the journal's head after each revision that moved it.
	headKey := co.u.Root() + "runs/head/" + res.RunID
	var entries []state.Entry
	if err := co.st.Journal(res.RunID, 0, func(e state.Entry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	started := map[string]uint64{} // node → seq of its started entry
	for _, e := range entries {
		if e.Type == state.EntryStarted {
			started[e.NodeID] = e.Seq
		}
	}
	var headSeq uint64
	withStart := map[string]bool{}
	for _, re := range revs {
		prev := headSeq
		for _, ev := range re.evs {
			if string(ev.Kv.Key) == headKey && ev.Type == clientv3.EventTypePut {
				seq, _, err := state.DecodeHead(ev.Kv.Value)
				if err != nil {
					t.Fatal(err)
				}
				headSeq = seq
			}
		}
		for _, ev := range re.evs {
			key := string(ev.Kv.Key)
			if ev.Type != clientv3.EventTypePut || !strings.HasPrefix(key, co.k.Run(res.RunID)) {
				continue
			}
			var nodes []string
			switch {
			case strings.Contains(key, "/o/"):
				b, err := cluster.DecodeOffer(ev.Kv.Value)
				if err != nil {
					t.Fatalf("offer batch %s: %v", key, err)
				}
				for _, it := range b.Items {
					nodes = append(nodes, it.Req.NodeID)
				}
			case strings.HasSuffix(key, "/item"):
				var it cluster.Item
				if err := json.Unmarshal(ev.Kv.Value, &it); err != nil {
					t.Fatalf("item %s: %v", key, err)
				}
				nodes = append(nodes, it.Req.NodeID)
			}
			for _, n := range nodes {
				seq, ok := started[n]
				switch {
				case !ok:
					t.Errorf("%s offered at revision %d, never started", n, re.rev)
				case seq > headSeq:
					t.Errorf("%s offered at revision %d, before its start (entry %d; head at %d)", n, re.rev, seq, headSeq)
				case seq > prev:
					withStart[n] = true
				}
			}
		}
	}
	// The first commit may go before the dispatcher follows the run
	// (followWait); the steps the later ones start go with them.
	for _, n := range []string{"n3", "n6", "n9"} {
		if !withStart[n] {
			t.Errorf("%s was not offered in the transaction of its start (offered with theirs: %v)", n, withStart)
		}
	}
}

// TestOfferInCommitToAgentGone: an offer that goes with the engine's
// commit to an agent whose lease has just expired is not written there;
// the step is written unclaimed after the commit, and a live agent of the
// zone runs it, once.
func TestOfferInCommitToAgentGone(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(12, ""))
	co := startEtcdCoordinator(t, c, "t1", g)
	startAgent(t, c, co.k, "core-1", "core", 4)
	cli := c.Client(t)
	lease, err := cli.Grant(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(context.Background(), lease.ID); err != nil {
		t.Fatal(err)
	}
	// The most free slots: every offer picks it while it is believed live.
	co.d.AddGhostAgent("ghost", "core", 1000, int64(lease.ID))
	stop := record(t, cli, co.u.Root())
	co.runOnce(t, g, dir, 12)
	unclaimed := map[string]bool{}
	for _, re := range stop() {
		for _, ev := range re.evs {
			key := string(ev.Kv.Key)
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			if strings.Contains(key, "/o/ghost/") {
				t.Errorf("an offer batch was written for the agent gone: %s", key)
			}
			if strings.HasSuffix(key, "/item") {
				var it cluster.Item
				if json.Unmarshal(ev.Kv.Value, &it) == nil {
					unclaimed[it.Req.NodeID] = true
				}
			}
		}
	}
	for _, n := range []string{"n3", "n6", "n9"} {
		if !unclaimed[n] {
			t.Errorf("%s was not written unclaimed after its offer to the agent gone (unclaimed: %v)", n, unclaimed)
		}
	}
}

// TestPrestartLowMaxTxnOps: with a member run with --max-txn-ops=16, the
// offers and clean-up that go with the engine's commits stay within it
// even with more agents than a level of a transaction holds offer
// batches: every step runs once.
func TestPrestartLowMaxTxnOps(t *testing.T) {
	c := etcdtest.StartWith(t, 1, etcdtest.Options{Flags: []string{"--max-txn-ops=16"}})
	dir := t.TempDir()
	g := mustGraph(t, dir, noopLike(100))
	co := startEtcdCoordinator(t, c, "lowops", g, 16)
	for i := range 20 {
		a := cluster.NewAgent(cluster.AgentOptions{Client: c.Client(t), Keys: co.k, Name: fmt.Sprintf("a%d", i), Zone: "core", Slots: 2,
			TTL: 5 * time.Second, NewHost: localHost, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), MaxTxnOps: 16})
		if err := a.Register(context.Background()); err != nil {
			t.Fatal(err)
		}
		drain, stop := context.WithCancel(context.Background())
		ended := make(chan struct{})
		go func() { a.Run(drain, context.Background()); close(ended) }()
		t.Cleanup(func() { stop(); <-ended })
	}
	co.runOnce(t, g, dir, 100)
}

// TestPrestartBigInputs: steps whose inputs are large (a dependency's
// 400 KB output, in each offer) do not take the engine's commit past
// etcd's request limit: what does not fit goes the usual way, and the run
// succeeds, each step once.
func TestPrestartBigInputs(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(`version: 1
name: biginputs
limits: {output_value: 1MiB, node_outputs: 1MiB}
zones:
  - {id: core, title: Core}
nodes:
  - {id: n0, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo n0 >> runs.txt; printf "blob=" >> "$REPRISE_OUTPUT"; head -c 400000 /dev/zero | tr "\\0" a >> "$REPRISE_OUTPUT"; echo >> "$REPRISE_OUTPUT"']}}
`)
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: exec, zone: core, depends_on: [n0], with: {restore: [sh, -c, 'echo n%d >> runs.txt']}}\n", i, i)
	}
	g := mustGraph(t, dir, b.String())
	co := startEtcdCoordinator(t, c, "big", g)
	startAgent(t, c, co.k, "core-1", "core", 8)
	co.runOnce(t, g, dir, 7)
}

// TestPrestartedAnsweredBeforeJoin: a step offered with its commit whose
// result comes back before the engine's Restore call joins it is not
// offered again: Restore takes that result, and the step ran once.
func TestPrestartedAnsweredBeforeJoin(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(1, ""))
	co := startEtcdCoordinator(t, c, "early", g)
	a := startAgent(t, c, co.k, "core-1", "core", 2)
	ctx := context.Background()
	run := state.Run{ID: "r1", GraphName: g.Name, Created: time.Now()}
	if err := co.st.CreateRun(ctx, run, g.Source, []state.NodeRecord{{ID: "n0", State: state.NodePending}}); err != nil {
		t.Fatal(err)
	}
	req := step.Request{RunID: "r1", NodeID: "n0", Kind: "application", Plugin: "exec", Attempt: 1, WorkDir: g.Dir}
	var extra any
	waitFor(t, 10*time.Second, "the dispatcher takes the call", func() bool {
		var taken []bool
		extra, taken = co.d.Prestart([]step.Request{req}, []time.Duration{time.Minute})
		return extra != nil && taken[0]
	})
	started := state.Change{RunID: "r1", Node: &state.NodeRecord{ID: "n0", State: state.NodeRunning, Attempts: 1},
		Entry: &state.Entry{Type: state.EntryStarted, NodeID: "n0", State: state.NodeRunning, Attempt: 1}}
	if err := co.st.ApplyWith(ctx, extra, started); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the step ran on the agent", func() bool {
		return counts(t, filepath.Join(dir, "runs.txt"))["n0"] == 1 && a.Busy() == 0
	})
	time.Sleep(200 * time.Millisecond) // its result reaches the dispatcher
	res, err := co.d.Restore(ctx, req, nil)
	if err != nil || res.Status != step.Succeeded {
		t.Fatalf("Restore = %+v, %v", res, err)
	}
	time.Sleep(500 * time.Millisecond)
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 1)
}
