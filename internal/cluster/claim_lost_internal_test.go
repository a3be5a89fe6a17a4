package cluster

import (
	"context"
	"encoding/json"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestClaimAnswerLost: a claim that committed but whose answer was lost
// (a member that hung; a client that moved to the new leader gives its
// requests up) is this agent's all the same. Before, the agent took the
// lost answer for a failure and put the item back among its candidates,
// then dropped it on seeing it claimed (by itself): nobody ran the step,
// and the coordinator waited for a result under a claim that lived as long
// as the agent. An item another agent claimed stays that agent's.
func TestClaimAnswerLost(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	ctx := context.Background()
	k := NewKeys("/lost/")
	a := NewAgent(AgentOptions{Client: cli, Keys: k, Name: "a1", Zone: "core"})
	lease, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	a.lease = lease.ID
	item := func(node string) claimable {
		it := Item{Call: "coord-" + node, Op: opRestore, Zone: "core", Protocol: ProtocolVersion,
			Req: step.Request{RunID: "r1", NodeID: node, Kind: "application", Plugin: "noop", Attempt: 1}}
		val, _ := json.Marshal(it)
		put, err := cli.Put(ctx, k.Item("r1", node), string(val))
		if err != nil {
			t.Fatal(err)
		}
		return claimable{key: k.Item("r1", node), c: candidate{item: it, rev: put.Header.Revision}}
	}
	mine, theirs := item("n1"), item("n2")
	// Another agent claims n2 first (its claim under its own lease).
	other, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	cv, _ := json.Marshal(Claim{Agent: "a2", Call: theirs.c.item.Call})
	if _, err := cli.Put(ctx, k.Claim("r1", "n2"), string(cv), clientv3.WithLease(other.ID)); err != nil {
		t.Fatal(err)
	}
	lost := 0
	a.loseClaim = func() bool { lost++; return lost == 1 }
	got := a.claim(ctx, []claimable{mine, theirs})
	if lost != 1 {
		t.Fatalf("%d claims sent, want one (its answer lost)", lost)
	}
	cr, err := cli.Get(ctx, k.Claim("r1", "n1"))
	if err != nil || len(cr.Kvs) != 1 {
		t.Fatalf("n1's claim: %v %v", cr, err)
	}
	if len(got) != 1 || got[0].key != mine.key || got[0].rev != cr.Kvs[0].CreateRevision {
		t.Fatalf("claimed after a lost answer: %+v, want n1 at its claim's revision %d", got, cr.Kvs[0].CreateRevision)
	}
	if a.Claimed() != 1 {
		t.Errorf("Claimed() = %d, want 1", a.Claimed())
	}
	a.mu.Lock()
	_, n2back := a.cand[theirs.key]
	_, n1back := a.cand[mine.key]
	a.mu.Unlock()
	if n1back || !n2back {
		t.Errorf("candidates after: n1 %v (want not: claimed), n2 %v (want: seen again, then dropped as a2's)", n1back, n2back)
	}
}
