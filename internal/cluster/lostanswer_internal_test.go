package cluster

import (
	"context"
	"encoding/json"
	"testing"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestLostPutBackAnswerLost: the put-back of a lost agent's step whose
// answer was lost is journaled all the same ("left running by lost agent",
// what the operators read to know a step may have run twice). Before, the
// next attempt found the item changed (by itself) and took it for a
// hand-back: the step went to another agent with no journal entry.
func TestLostPutBackAnswerLost(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := NewKeys("/lostj/")
	var journaled []*state.Entry
	d := &Dispatcher{k: k, ctx: ctx, log: zap.NewNop(), o: DispatcherOptions{Client: cli,
		Journal: func(_ context.Context, run string, e *state.Entry) error {
			journaled = append(journaled, e)
			return nil
		}}}
	it := Item{Call: "coord-1", Op: opRestore, Zone: "core", Protocol: ProtocolVersion, ClaimedBy: "a1",
		Req: step.Request{RunID: "r1", NodeID: "n1", Kind: "application", Plugin: "noop", Attempt: 1}}
	val, _ := json.Marshal(it)
	put, err := cli.Put(ctx, k.Item("r1", "n1"), string(val))
	if err != nil {
		t.Fatal(err)
	}
	rw := &runWork{d: d, run: "r1"}
	lost := 0
	d.loseAnswer = func() bool { lost++; return lost == 1 }
	rw.lost(&call{node: "n1", id: it.Call}, "a1", 7, it, put.Header.Revision)
	if lost != 2 {
		t.Fatalf("%d put-backs sent, want 2 (the first answer lost)", lost)
	}
	got, err := cli.Get(ctx, k.Item("r1", "n1"))
	if err != nil || len(got.Kvs) != 1 || got.Kvs[0].Version != 2 {
		t.Fatalf("the item: %v %v, want put back once", got.Kvs, err)
	}
	var back Item
	json.Unmarshal(got.Kvs[0].Value, &back)
	if !back.CheckFirst || back.LostAgent != "a1" || back.ClaimedBy != "" {
		t.Errorf("put back as %+v, want CheckFirst, lost agent a1, unclaimed", back)
	}
	if len(journaled) != 1 || journaled[0].Type != EntryAgentLost || journaled[0].Data["agent"] != "a1" {
		t.Fatalf("journaled %+v, want one agent-lost entry naming a1", journaled)
	}
	// A hand-back by the agent (not a put-back of this coordinator's) is
	// not journaled as lost.
	handed := it
	handed.CheckFirst, handed.ClaimedBy = true, ""
	hv, _ := json.Marshal(handed)
	p2, err := cli.Put(ctx, k.Item("r1", "n1"), string(hv))
	if err != nil {
		t.Fatal(err)
	}
	journaled, lost = nil, 1
	rw.lost(&call{node: "n1", id: it.Call}, "a1", 7, it, p2.Header.Revision-1)
	if len(journaled) != 0 {
		t.Errorf("a hand-back journaled as lost: %+v", journaled)
	}
}
