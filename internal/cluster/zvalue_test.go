package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
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
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// valueSizes are the bytes a run wrote, taken from the watch of its
// prefix: per engine commit that carried offers (every put's key and
// value), per offer batch and per result batch (their values).
type valueSizes struct {
	commits, offerParts, offers, batches []int
	packedOffers, packedBatches          int
	calls, results                       map[string]bool // nodes offered, answered
}

func measure(t *testing.T, revs []revEvents, k cluster.Keys) valueSizes {
	s := valueSizes{calls: map[string]bool{}, results: map[string]bool{}}
	for _, re := range revs {
		total, offers, hasOffer := 0, 0, false
		for _, ev := range re.evs {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			key := string(ev.Kv.Key)
			total += len(key) + len(ev.Kv.Value)
			if !strings.HasPrefix(key, k.Runs()) {
				continue
			}
			switch {
			case strings.Contains(key, "/o/"):
				hasOffer = true
				offers += len(ev.Kv.Value)
				s.offers = append(s.offers, len(ev.Kv.Value))
				b, err := cluster.DecodeOffer(ev.Kv.Value)
				if err != nil {
					t.Errorf("offer batch %s: %v", key, err)
				}
				for _, it := range b.Items {
					s.calls[it.Req.NodeID] = true
				}
				if cluster.IsPacked(ev.Kv.Value) {
					s.packedOffers++
				}
			case strings.Contains(key, "/b/"):
				s.batches = append(s.batches, len(ev.Kv.Value))
				rs, err := cluster.DecodeResults(ev.Kv.Value)
				if err != nil {
					t.Errorf("result batch %s: %v", key, err)
				}
				for _, r := range rs {
					s.results[r.Node] = true
				}
				if cluster.IsPacked(ev.Kv.Value) {
					s.packedBatches++
				}
			}
		}
		// The engine's commits: a state write beside the offers.
		if hasOffer && total > offers+1000 {
			s.commits = append(s.commits, total)
			s.offerParts = append(s.offerParts, offers)
		}
	}
	return s
}

func medianInt(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func (s valueSizes) String() string {
	return fmt.Sprintf("%d engine commits with offers: median %d bytes (offers %d); %d offer batches (%d packed): median %d bytes; %d result batches (%d packed): median %d bytes",
		len(s.commits), medianInt(s.commits), medianInt(s.offerParts), len(s.offers), s.packedOffers, medianInt(s.offers),
		len(s.batches), s.packedBatches, medianInt(s.batches))
}

// TestPackedValuesRun: a run of 5 levels of 100 noop steps through three
// agents, the state on etcd (offers in the engine's commits), succeeds;
// its offer batches and result batches are stored packed (the marker,
// then a zstd frame), as the watch of the prefix sees them. It logs the
// bytes written per commit and per batch.
func TestPackedValuesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a run of 500 steps")
	}
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	g := mustGraph(t, dir, noopGraph(500))
	u, err := etcdconn.Parse(c.URL("zv"))
	if err != nil {
		t.Fatal(err)
	}
	st := etcdstate.New(c.Client(t), u, etcdstate.Options{})
	t.Cleanup(func() { st.Close() })
	k := cluster.NewKeys(u.Root())
	for j := range 3 {
		startAgent(t, c, k, fmt.Sprintf("a%d", j), "core", 128)
	}
	d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(t), Keys: k, Graph: g, AgentsOnly: true, Prestart: true,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Name: "coord",
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	t.Cleanup(func() { d.Close() })
	if d.Agents()["core"] != 3 {
		t.Fatalf("agents seen: %v", d.Agents())
	}
	stop := record(t, c.Client(t), u.Root())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := engine.New(st, d, engine.Options{Parallelism: 256, NoProgress: true}).Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v", res, err)
	}
	s := measure(t, stop(), k)
	t.Logf("bytes written: %v", s)
	if len(s.commits) == 0 || len(s.batches) == 0 {
		t.Fatalf("no engine commit with offers, or no result batch, seen: %v", s)
	}
	if len(s.calls) != 500 || len(s.results) != 500 {
		t.Errorf("%d nodes offered, %d answered in result batches, want 500", len(s.calls), len(s.results))
	}
	if s.packedOffers == 0 || s.packedBatches == 0 {
		t.Errorf("offer batches or result batches not packed: %v", s)
	}
}

// damagedPacked is a packed value cut in its middle.
func damagedPacked(t *testing.T) []byte {
	v := cluster.PackValue([]byte(`[` + strings.Repeat(`{"call":"x","node":"n1","agent":"a","status":"succeeded"},`, 100) + `{}]`))
	if !cluster.IsPacked(v) {
		t.Fatal("not packed")
	}
	return v[:len(v)/2]
}

// agentLease returns the lease agent name is registered under.
func agentLease(t *testing.T, cli *clientv3.Client, k cluster.Keys, name string) clientv3.LeaseID {
	t.Helper()
	resp, err := cli.Get(context.Background(), k.Agent(name))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("registration of %s: %v, %v", name, resp, err)
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// TestAgentReadsPlainOffers: an agent runs the calls of an offer batch
// written plain (as a coordinator writes one too small to pack; an earlier
// one, before packing, wrote every batch so, but it also spoke an earlier
// protocol: protocol_test.go), and answers it plain (a coordinator that
// wrote it plain may not read packed values) though its results are
// large enough to pack; it skips an offer batch whose
// packed value is damaged, as it skips damaged JSON (no panic: it goes on
// taking offers).
func TestAgentReadsPlainOffers(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(6, ""))
	co := startEtcdCoordinator(t, c, "pv", g)
	startAgent(t, c, co.k, "core-1", "core", 8)
	cli := c.Client(t)
	stop := record(t, cli, co.u.Root())
	co.runOnce(t, g, dir, 6)
	// The calls as the coordinator sent them (offered, or written
	// unclaimed before it saw the agent), for a run of an older one.
	items := map[string]cluster.Item{}
	for _, re := range stop() {
		for _, ev := range re.evs {
			key := string(ev.Kv.Key)
			switch {
			case ev.Type != clientv3.EventTypePut:
			case strings.Contains(key, "/o/"):
				b, err := cluster.DecodeOffer(ev.Kv.Value)
				if err != nil {
					t.Fatalf("offer batch %s: %v", key, err)
				}
				for _, it := range b.Items {
					items[it.Req.NodeID] = it
				}
			case strings.HasSuffix(key, "/item"):
				var it cluster.Item
				if err := json.Unmarshal(ev.Kv.Value, &it); err != nil {
					t.Fatalf("item %s: %v", key, err)
				}
				it.ClaimedBy = ""
				items[it.Req.NodeID] = it
			}
		}
	}
	if len(items) != 6 {
		t.Fatalf("calls offered: %v", items)
	}
	lease := agentLease(t, cli, co.k, "core-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, co.k.Offer("oldrun", "core-1", "old.1"), string(damagedPacked(t)), clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	// Compact, as the coordinators wrote them: the shared fields once.
	it := items["n0"]
	old := cluster.OfferBatch{By: "old-coord", Protocol: cluster.ProtocolVersion, Graph: it.Graph, GraphFile: it.GraphFile, Run: "oldrun", WorkDir: it.Req.WorkDir}
	for node, it := range items {
		it.Call, it.By, it.Graph, it.GraphFile, it.Req.RunID, it.Req.WorkDir = "old-call-"+node, "", "", "", "", ""
		old.Items = append(old.Items, it)
	}
	val, _ := json.Marshal(old)
	if cluster.IsPacked(val) {
		t.Fatal("JSON taken for a packed value")
	}
	offerKey := co.k.Offer("oldrun", "core-1", "old.2")
	if _, err := cli.Put(ctx, offerKey, string(val), clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	got := map[string]cluster.Result{}
	for len(got) < len(items) {
		if ctx.Err() != nil {
			t.Fatalf("results of the plain offer batch: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := cli.Get(ctx, co.k.Run("oldrun")+"b/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, kv := range resp.Kvs {
			if cluster.IsPacked(kv.Value) {
				t.Fatalf("result batch %s of a plain offer batch packed", kv.Key)
			}
			rs, err := cluster.DecodeResults(kv.Value)
			if err != nil {
				t.Fatalf("result batch %s: %v", kv.Key, err)
			}
			for _, r := range rs {
				got[r.Node] = r
			}
			size += len(kv.Value)
		}
		if len(got) == len(items) {
			t.Logf("%d results in %d plain batches, %d bytes", len(got), len(resp.Kvs), size)
		}
	}
	for node, r := range got {
		if r.Call != "old-call-"+node || r.Status != "succeeded" {
			t.Errorf("result of %s: %+v", node, r)
		}
	}
	if resp, err := cli.Get(ctx, offerKey); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("the plain offer batch answered is still there: %v, %v", resp, err)
	}
	ran := counts(t, filepath.Join(dir, "runs.txt"))
	for node := range items {
		if ran[node] != 2 {
			t.Errorf("%s ran %d times, want twice (its run, then the plain offer)", node, ran[node])
		}
	}
}

// TestCoordinatorReadsPlainResults: the coordinator reads result batches
// written plain, as an agent before packing wrote every batch; one whose
// packed value is damaged it skips as it skips damaged JSON: its calls
// go back when their offer batch goes, journaled as left by a lost agent,
// and are offered again. The agent here is the test's.
func TestCoordinatorReadsPlainResults(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(9, ""))
	u, err := etcdconn.Parse(c.URL("pf"))
	if err != nil {
		t.Fatal(err)
	}
	k := cluster.NewKeys(u.Root())
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	grant, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(cluster.AgentInfo{Name: "fake", Zone: "core", Slots: 100, Protocol: cluster.ProtocolVersion})
	if _, err := cli.Put(ctx, k.Agent("fake"), string(info), clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var packed, answered int
	damagedNodes := map[string]bool{}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, k.Runs(), clientv3.WithPrefix())
	go func() {
		n := 0
		for wr := range wch {
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				if ev.Type != clientv3.EventTypePut || !strings.Contains(key, "/o/fake/") {
					continue
				}
				b, err := cluster.DecodeOffer(ev.Kv.Value)
				if err != nil {
					t.Errorf("offer batch %s: %v", key, err)
					continue
				}
				run, _, _ := strings.Cut(strings.TrimPrefix(key, k.Runs()), "/")
				var val []byte
				n++
				switch n {
				case 1: // packed, damaged
					val = damagedPacked(t)
				case 2: // plain, damaged
					val = []byte(`[{"call":`)
				default:
					var rs []cluster.Result
					for _, it := range b.Items {
						rs = append(rs, cluster.Result{Call: it.Call, ClaimRev: ev.Kv.CreateRevision, Agent: "fake", Op: it.Op,
							Status: "succeeded", Message: "answered plain", Node: it.Req.NodeID})
					}
					val, _ = json.Marshal(rs)
				}
				mu.Lock()
				if cluster.IsPacked(ev.Kv.Value) {
					packed++
				}
				for _, it := range b.Items {
					if n <= 2 {
						damagedNodes[it.Req.NodeID] = true
					} else {
						answered++
					}
				}
				mu.Unlock()
				if _, err := cli.Txn(wctx).Then(clientv3.OpPut(k.Batch(run, fmt.Sprintf("fake.%d", n)), string(val)), clientv3.OpDelete(key)).Commit(); err != nil && wctx.Err() == nil {
					t.Errorf("answer %s: %v", key, err)
				}
			}
		}
	}()
	co := startEtcdCoordinator(t, c, "pf", g)
	res, err := co.e.Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v", res, err)
	}
	wcancel()
	mu.Lock()
	defer mu.Unlock()
	if packed == 0 {
		t.Error("no offer batch packed")
	}
	if answered != 9 || len(damagedNodes) == 0 {
		t.Errorf("calls answered %d, want 9; nodes of the damaged batches %v", answered, damagedNodes)
	}
	lost := map[string]bool{}
	if err := co.st.Journal(res.RunID, 0, func(e state.Entry) error {
		if e.Type == cluster.EntryAgentLost {
			lost[e.NodeID] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for n := range damagedNodes {
		if !lost[n] {
			t.Errorf("%s, answered in a damaged result batch, not journaled left by a lost agent: %v", n, lost)
		}
	}
}
