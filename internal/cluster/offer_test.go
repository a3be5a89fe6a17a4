package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// claimLog records every claim written under a run prefix: the calls of
// offer batches (claimed by a coordinator for an agent) and an agent's own
// claims.
type claimLog struct {
	mu     sync.Mutex
	offers map[string]int // agent → claims made for it by a coordinator
	own    map[string]int // agent → claims it made itself
}

func watchClaims(t *testing.T, c *etcdtest.Cluster, k cluster.Keys) *claimLog {
	cl := &claimLog{offers: map[string]int{}, own: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wch := c.Client(t).Watch(ctx, k.Runs(), clientv3.WithPrefix())
	go func() {
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				key := string(ev.Kv.Key)
				if i := strings.Index(key, "/o/"); i >= 0 {
					b, err := cluster.DecodeOffer(ev.Kv.Value)
					if err != nil {
						continue
					}
					agent, _, _ := strings.Cut(key[i+3:], "/")
					cl.mu.Lock()
					cl.offers[agent] += len(b.Items)
					cl.mu.Unlock()
					continue
				}
				if !strings.HasSuffix(key, "/claim") {
					continue
				}
				var claim cluster.Claim
				if json.Unmarshal(ev.Kv.Value, &claim) != nil {
					continue
				}
				cl.mu.Lock()
				if claim.By != "" {
					cl.offers[claim.Agent]++
				} else {
					cl.own[claim.Agent]++
				}
				cl.mu.Unlock()
			}
		}
	}()
	return cl
}

// TestOfferBatchHalfHeld: the coordinator offers calls to the live agents
// with free slots, in transactions of many calls. Here one of the two
// agents it believes live is gone (its lease expired): the offers to it do
// not hold, and those calls are written unclaimed in the same transactions
// as the offers that hold; the live agent claims them itself. Every step
// runs once, nothing is ever claimed for the gone agent.
func TestOfferBatchHalfHeld(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("offerhalf")
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(12, ""))
	claims := watchClaims(t, c, k)
	live := startAgent(t, c, k, "live", "core", 3)
	co := startCoordinator(t, c, k, dir, g, false)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	lease, err := cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	co.d.AddGhostAgent("ghost", "core", 3, int64(lease.ID))
	res, err := co.eng.Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v; nodes %s", res, err, nodeStates(t, co.st, res.RunID))
	}
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 12)
	claims.mu.Lock()
	defer claims.mu.Unlock()
	if claims.offers["ghost"]+claims.own["ghost"] != 0 {
		t.Errorf("calls claimed for the gone agent: %v %v", claims.offers, claims.own)
	}
	if claims.offers["live"] == 0 || claims.own["live"] == 0 {
		t.Errorf("offers %v, own claims %v: want both some offers to live and some calls it claimed itself (offered to ghost, written unclaimed)", claims.offers, claims.own)
	}
	if live.Claimed() != 12 {
		t.Errorf("the live agent took %d calls, want 12", live.Claimed())
	}
}

// TestOffersInHandOfLostAgent: an agent holds offered calls it has not
// started (its one slot is busy) when it loses its lease. The claims go
// with the lease: the coordinator journals each step "left running by lost
// agent" and puts it back; the other agent asks Check first. The step that
// was running had done its work: not restored again; the others never
// started on the lost agent: restored once by the other agent. No step runs
// twice.
func TestOffersInHandOfLostAgent(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("offerlost")
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: offerlost\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range 4 {
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo n%d >> runs.txt; touch n%d.done; while [ -f hold ]; do sleep 0.1; done'], check: [sh, -c, 'test -f n%d.done']}}\n", i, i, i, i)
	}
	g := mustGraph(t, dir, b.String())
	if err := os.WriteFile(filepath.Join(dir, "hold"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	claims := watchClaims(t, c, k)
	first := startAgent(t, c, k, "first", "core", 1)
	co := startCoordinator(t, c, k, dir, g, false)
	if !co.d.SetAgentSlots("first", 4) { // as if a second coordinator's offers filled it
		t.Fatal("agent first not seen by the coordinator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	done := co.startRun(ctx, g)
	waitFor(t, 60*time.Second, "four offers to first, one of them running", func() bool {
		claims.mu.Lock()
		n := claims.offers["first"]
		claims.mu.Unlock()
		return n == 4 && len(counts(t, filepath.Join(dir, "runs.txt"))) == 1
	})
	time.Sleep(300 * time.Millisecond) // the agent has them queued
	if got := counts(t, filepath.Join(dir, "runs.txt")); len(got) != 1 {
		t.Fatalf("the agent of one slot runs %v", got)
	}
	startAgent(t, c, k, "second", "core", 4)
	if _, err := first.cli.Revoke(ctx, first.Lease()); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "hold"))
	o := co.waitSucceeded(t, ctx, done)
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 4)
	lost := journalOf(t, co.st, o.runID, cluster.EntryAgentLost)
	if len(lost) != 4 {
		t.Errorf("agent-lost entries: %d, want 4 (one per call first held): %+v", len(lost), lost)
	}
	for _, e := range lost {
		if !strings.Contains(e.Message, "left running by lost agent first") {
			t.Errorf("agent-lost entry %q", e.Message)
		}
	}
}
