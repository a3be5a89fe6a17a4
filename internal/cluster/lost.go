package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
)

// lost puts back a call whose claim went away with its agent's lease
// before a result: another agent of the zone takes it and asks Check
// first. Journaled as "left running by lost agent N". Nothing happens if
// the item changed meanwhile (handed back) or a result is there.
func (rw *runWork) lost(c *call, agent string, claimRev int64, it Item, itemRev int64) {
	d := rw.d
	k := d.k
	it.CheckFirst, it.LostAgent, it.ClaimedBy = true, agent, ""
	val, _ := json.Marshal(it)
	for d.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		resp, err := d.o.Client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(k.Item(rw.run, c.node)), "=", itemRev),
				clientv3.Compare(clientv3.Version(k.Result(rw.run, c.node)), "=", 0)).
			Then(clientv3.OpPut(k.Item(rw.run, c.node), string(val))).
			Else(clientv3.OpGet(k.Item(rw.run, c.node))).Commit()
		cancel()
		if err == nil && d.loseAnswer != nil && d.loseAnswer() {
			resp, err = nil, errors.New("test: the answer was lost")
		}
		if err != nil {
			d.log.Warn("put back a lost agent's step: etcd unreachable, trying again", zap.String("node", c.node), zap.Error(err))
			sleep(d.ctx, time.Second)
			continue
		}
		if !resp.Succeeded && !putBackAlready(resp, itemRev, agent, it.Call) {
			return // handed back, or a result came
		}
		rw.journalLost(c.node, agent, claimRev, it.Zone)
		return
	}
}

// putBackAlready reports whether the item read by lost's transaction
// (its Else) is lost's own put-back, written by an earlier attempt whose
// answer was lost: written after itemRev, for call, naming agent as lost
// (claimed since by another agent, or not). Then it is journaled all the
// same.
func putBackAlready(resp *clientv3.TxnResponse, itemRev int64, agent, call string) bool {
	if len(resp.Responses) == 0 {
		return false
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 || kvs[0].ModRevision <= itemRev {
		return false
	}
	var it Item
	return json.Unmarshal(kvs[0].Value, &it) == nil && it.Call == call && it.LostAgent == agent && it.CheckFirst
}

// journalLost journals node "left running by lost agent".
func (rw *runWork) journalLost(node, agent string, claimRev int64, zone string) {
	shown := zone
	if shown == "" {
		shown = "(any)"
	}
	msg := fmt.Sprintf("left running by lost agent %s (its lease expired; claim revision %d): given to another agent of zone %s, which asks Check first", agent, claimRev, shown)
	rw.d.log.Warn(msg, zap.String("run", rw.run), zap.String("node", node))
	rw.journal(&state.Entry{Type: EntryAgentLost, NodeID: node, State: state.NodeRunning, Message: msg,
		Data: map[string]string{"agent": agent, "zone": zone, "claim_rev": fmt.Sprint(claimRev)}})
}

// refused journals a late result that fencing refused, and removes it.
func (rw *runWork) refused(kv *mvccpb.KeyValue) {
	d := rw.d
	var r Result
	json.Unmarshal(kv.Value, &r)
	p, _ := d.k.parse(string(kv.Key))
	if r.Node != "" {
		p.node = r.Node
	}
	if r.Call != "" && rw.wasApplied(r) {
		// Not late: the agent wrote this result again after the answer
		// to its first write was lost, and the first one was applied.
		d.log.Info("a result written twice (the answer to its first write was lost): applied once, not journaled as refused",
			zap.String("run", rw.run), zap.String("node", p.node), zap.String("agent", r.Agent), zap.Int64("claim", r.ClaimRev))
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		d.o.Client.Delete(ctx, string(kv.Key))
		return
	}
	what := string(r.Status)
	if r.Op == opCheck {
		what = fmt.Sprintf("restored=%v", r.Restored)
	}
	if r.Error != "" {
		what = "error: " + r.Error
	}
	msg := fmt.Sprintf("late result of agent %s refused, not applied: its claim (revision %d) had been taken over after its lease expired (result was %s)", r.Agent, r.ClaimRev, what)
	d.log.Warn(msg, zap.String("run", rw.run), zap.String("node", p.node))
	if rw.journal(&state.Entry{Type: EntryResultRefused, NodeID: p.node, Message: msg,
		Data: map[string]string{"agent": r.Agent, "claim_rev": fmt.Sprint(r.ClaimRev), "op": r.Op}}) == nil {
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		d.o.Client.Delete(ctx, string(kv.Key))
	}
}

func (rw *runWork) journal(e *state.Entry) error {
	d := rw.d
	if d.o.Journal == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	if err := d.o.Journal(ctx, rw.run, e); err != nil {
		d.log.Error("journal", zap.String("run", rw.run), zap.String("node", e.NodeID), zap.String("type", string(e.Type)), zap.Error(err))
		return err
	}
	return nil
}

// maxApplied bounds runWork.applied: a repeat comes within seconds of the
// result it repeats.
const maxApplied = 1 << 14

// appliedLocked remembers that r was applied; rw.mu is held.
func (rw *runWork) appliedLocked(r Result) {
	if rw.applied == nil {
		rw.applied = map[string]bool{}
	}
	key := appliedKey(r)
	if rw.applied[key] {
		return
	}
	rw.applied[key] = true
	rw.appliedOrder = append(rw.appliedOrder, key)
	if len(rw.appliedOrder) > maxApplied {
		delete(rw.applied, rw.appliedOrder[0])
		rw.appliedOrder = rw.appliedOrder[1:]
	}
}

// wasApplied reports whether r (written aside as refused) is a result
// applied already: the same call, under the same claim.
func (rw *runWork) wasApplied(r Result) bool {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.applied[appliedKey(r)]
}

func appliedKey(r Result) string { return r.Call + "@" + strconv.FormatInt(r.ClaimRev, 10) }
