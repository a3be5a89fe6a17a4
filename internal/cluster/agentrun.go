package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// execute runs claimed (or offered) call cl and writes its result.
func (a *Agent) execute(hard context.Context, cl claimable) {
	key, it, rev := cl.key, cl.c.item, cl.rev
	// One context: cancel (a withdrawal) and the timeout end it alike.
	// Made once: a context made and dropped stays among hard's children
	// until hard ends (the agent's life).
	var ctx context.Context
	var cancel context.CancelFunc
	if it.Timeout > 0 {
		ctx, cancel = context.WithTimeout(hard, time.Duration(it.Timeout))
	} else {
		ctx, cancel = context.WithCancel(hard)
	}
	defer cancel()
	r := &running{item: it, claimRev: rev, offer: cl.offer, cancel: cancel}
	a.mu.Lock()
	a.running[key] = r
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.running, key)
		marker := r.withdrawn // withdrawn after its result was written
		a.mu.Unlock()
		if marker != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.opts.Client.Delete(ctx, marker)
		}
	}()
	nlog := a.log.With(zap.String("run", it.Req.RunID), zap.String("node", it.Req.NodeID), zap.String("op", it.Op), zap.Int64("claim", rev))
	nlog.Info("step claimed", zap.Bool("check_first", it.CheckFirst), zap.String("lost_agent", it.LostAgent))
	fence := a.opts.Keys.Claim(it.Req.RunID, it.Req.NodeID)
	if cl.offer != "" {
		fence = cl.offer
	}
	ev := &eventBatch{a: a, it: it, rev: rev, fence: fence}
	stopFlush := ev.start(ctx)
	res := a.call(ctx, it, ev.add)
	stopFlush()
	trace(it.Req.NodeID, "ran")
	res.Call, res.ClaimRev, res.Agent, res.Op, res.Node = it.Call, rev, a.opts.Name, it.Op, it.Req.NodeID
	a.mu.Lock()
	superseded, withdrawn := r.superseded, r.withdrawn
	r.withdrawn = "" // deleted with the answer below
	a.mu.Unlock()
	if superseded {
		nlog.Info("step withdrawn by the coordinator while it ran: no result to write", zap.String("status", string(res.Status)))
		if cl.offer != "" {
			a.writeResult(hard, &pendingResult{it: it, offer: cl.offer, rev: rev, withdrawn: withdrawn, nlog: nlog})
		}
		return
	}
	if hard.Err() != nil && res.Status != step.Succeeded {
		// Cancelled by the operator (second signal): hand the step back.
		if cl.offer == "" {
			a.handBack(it, key, rev, nlog)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.writeResults(ctx, []*pendingResult{{it: it, offer: cl.offer, rev: rev, nlog: nlog,
			res: Result{Call: it.Call, ClaimRev: rev, Agent: a.opts.Name, Op: it.Op, Node: it.Req.NodeID, HandedBack: true, CheckFirst: true}}})
		return
	}
	evs := ev.rest()
	if eventsSize(evs) > maxEventBytes {
		ev.mu.Lock()
		ev.buf = evs
		ev.mu.Unlock()
		ev.flush(hard) // in keys of their own, before the result
		evs = nil
	}
	a.writeResult(hard, &pendingResult{it: it, res: res, evs: evs, offer: cl.offer, rev: rev, nlog: nlog})
}

// call runs the item's operation through the local plugin host.
func (a *Agent) call(ctx context.Context, it Item, onEvent func(step.Event)) Result {
	g, letGraph, err := a.graphs.hold(ctx, it.Graph, it.GraphFile)
	if err != nil {
		return Result{Error: err.Error(), Permanent: true}
	}
	defer letGraph()
	n, ok := g.Node(it.Req.NodeID)
	if !ok {
		return Result{Error: fmt.Sprintf("node %q is not in graph %s (%s)", it.Req.NodeID, g.Name, it.Graph), Permanent: true}
	}
	h, release, err := a.hostOf(ctx, g, it.Graph, n.Plugin)
	if err != nil {
		return Result{Error: fmt.Sprintf("agent %q: %v", a.opts.Name, err), Permanent: true}
	}
	defer release()
	req := it.Req
	cfg, err := a.eng.ResolveConfig(n, g.Dir, req.Inputs, it.Op == opCheck)
	if err != nil {
		return Result{Status: step.Failed, Message: fmt.Sprintf("resolve config on agent %q: %v", a.opts.Name, err)}
	}
	req.Config = cfg
	var res Result
	switch it.Op {
	case opCheck:
		cr, err := h.Check(ctx, req)
		if err != nil {
			return errResult(err)
		}
		res = Result{Restored: cr.Restored, Message: cr.Message, Outputs: cr.Outputs}
	case opVerify:
		vr, err := h.Verify(ctx, req)
		if err != nil {
			return errResult(err)
		}
		res = Result{Status: vr.Status, Message: vr.Message, Outputs: vr.Outputs}
	default:
		if it.CheckFirst {
			if res, ok := a.checkFirst(ctx, h, n, g, it, req); ok {
				return a.guard(n, res)
			}
		}
		sr, err := h.Restore(ctx, req, onEvent)
		if err != nil {
			return errResult(err)
		}
		res = Result{Status: sr.Status, Message: sr.Message, Outputs: sr.Outputs}
	}
	return a.guard(n, res)
}

// checkFirst asks Check for a step left running by a lost agent (or handed
// back): restored, it is not restored again.
func (a *Agent) checkFirst(ctx context.Context, h step.Host, n *graphs.Node, g *graphs.Graph, it Item, req step.Request) (Result, bool) {
	cfg, err := a.eng.ResolveConfig(n, g.Dir, req.Inputs, true)
	if err != nil {
		return Result{}, false
	}
	creq := req
	creq.Config = cfg
	cr, err := h.Check(ctx, creq)
	why := "handed back by a stopping agent"
	if it.LostAgent != "" {
		why = fmt.Sprintf("left running by lost agent %s", it.LostAgent)
	}
	if err != nil || !cr.Restored {
		msg := cr.Message
		if err != nil {
			msg = err.Error()
		}
		a.log.Info(why+"; check: not restored: restoring again", zap.String("node", n.ID), zap.String("check", a.red.String(msg)))
		return Result{}, false
	}
	if cr.Message == "" {
		cr.Message = "restored"
	}
	return Result{Status: step.Succeeded, Checked: true, Outputs: cr.Outputs,
		Message: fmt.Sprintf("%s; check on agent %s: %s: not restored again", why, a.opts.Name, cr.Message)}, true
}

// guard keeps the agent's secrets out of etcd: text is redacted, and an
// output holding a secret fails the step, as in the coordinator.
func (a *Agent) guard(n *graphs.Node, res Result) Result {
	res.Message = a.red.String(res.Message)
	var bad []string
	for k, v := range res.Outputs {
		if a.red.Contains(v) {
			bad = append(bad, strconv.Quote(k))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		res.Outputs = nil
		res.Restored = false
		res.Status = step.Failed
		res.Message = fmt.Sprintf("node %q: output %s holds a secret (a ${secret:…} value): a secret must not travel through the state", n.ID, strings.Join(bad, ", "))
	}
	if size := resultSize(res); size > maxResultBytes {
		res.Outputs = nil
		res.Restored = false
		res.Status = step.Failed
		res.Message = fmt.Sprintf("node %q: its result is %d bytes, more than the %d an agent sends through etcd (limits.node_outputs above 1MiB holds only on one machine): outputs dropped; the message began: %s",
			n.ID, size, maxResultBytes, strings.ToValidUTF8(res.Message[:min(len(res.Message), 512)], ""))
	}
	return res
}

func errResult(err error) Result {
	var p interface{ Permanent() bool }
	return Result{Error: err.Error(), Permanent: errors.As(err, &p) && p.Permanent()}
}

// handBack gives a cancelled step back: the claim goes and the item is put
// again with CheckFirst, in one transaction that holds only if the claim
// is still this agent's.
func (a *Agent) handBack(it Item, key string, rev int64, nlog *zap.Logger) {
	k := a.opts.Keys
	run, node := it.Req.RunID, it.Req.NodeID
	it.CheckFirst, it.ClaimedBy = true, ""
	val, _ := json.Marshal(it)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.opts.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k.Claim(run, node)), "=", rev)).
		Then(clientv3.OpDelete(k.Claim(run, node)), clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		nlog.Warn("hand the step back: its claim will expire with the agent's lease", zap.Error(err))
		return
	}
	nlog.Info("step handed back (agent stopping): the next agent asks Check first")
}

// watch follows the work of every run: items of this agent's zone become
// candidates; a claim or item that goes away cancels the step it runs.
func (a *Agent) watch(ctx context.Context) {
	k := a.opts.Keys
	for ctx.Err() == nil {
		resp, err := a.opts.Client.Get(ctx, k.Runs(), clientv3.WithPrefix())
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("list work: etcd unreachable, trying again", zap.Error(err))
				sleep(ctx, time.Second)
			}
			continue
		}
		listed := map[string]bool{}
		for _, kv := range resp.Kvs {
			listed[string(kv.Key)] = true
			a.seeItem(kv, false)
		}
		a.forgetUnlisted(listed)
		a.idleLog()
		rev := resp.Header.Revision
		wch := a.opts.Client.Watch(clientv3.WithRequireLeader(ctx), k.Runs(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				a.seeItem(ev.Kv, ev.Type == mvccpb.DELETE)
				if ev.Type == mvccpb.DELETE {
					a.seeDelete(ev)
				}
			}
			a.notify()
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// idleLog says so when the agent's zone has no work at all.
func (a *Agent) idleLog() {
	a.mu.Lock()
	n := a.seen
	a.mu.Unlock()
	if n == 0 {
		a.log.Info("no work for this zone: idle, waiting for steps")
	}
}

func (a *Agent) seeItem(kv *mvccpb.KeyValue, deleted bool) {
	p, ok := a.opts.Keys.parse(string(kv.Key))
	if !ok {
		return
	}
	switch {
	case p.kind == "batch" || p.kind == "ev" || p.kind == "result" || p.kind == "refused":
		return
	case p.kind == "offer" || p.kind == "withdraw":
		if p.agent != a.opts.Name {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if p.kind == "offer" {
			if deleted {
				delete(a.settled, string(kv.Key))
			}
			a.seeOfferLocked(kv, deleted)
		} else if !deleted {
			a.seeWithdrawLocked(kv, p.id)
		}
		return
	}
	ik := a.opts.Keys.Item(p.run, p.node)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case p.kind == "claim" && !deleted:
		delete(a.cand, ik) // taken
	case p.kind == "item" && deleted:
		delete(a.cand, ik)
		if r := a.running[ik]; r != nil && r.offer == "" {
			r.superseded = true
			r.cancel() // the coordinator withdrew the call
		}
	case p.kind == "item":
		var it Item
		if json.Unmarshal(kv.Value, &it) != nil || (it.Zone != "" && it.Zone != a.opts.Zone) {
			return
		}
		if !a.sameProtocolLocked(it.By, it.Protocol) {
			return
		}
		a.seen++
		if r := a.running[ik]; r != nil && r.offer == "" && (r.item.Call != it.Call || it.ClaimedBy == "") {
			// Put back (this agent's claim was lost), or another call: its
			// result, if it writes one, is refused by fencing and journaled.
			r.cancel()
		}
		if it.ClaimedBy != "" {
			delete(a.cand, ik) // claimed (its claim may be gone with a lost agent: the coordinator puts it back)
			return
		}
		if _, ok := a.cand[ik]; !ok {
			a.queue = append(a.queue, ik)
			trace(p.node, "seen")
		}
		a.cand[ik] = candidate{item: it, rev: kv.ModRevision}
	}
}

func (a *Agent) seeDelete(ev *clientv3.Event) {
	p, ok := a.opts.Keys.parse(string(ev.Kv.Key))
	if !ok || p.kind != "claim" {
		return
	}
	ik := a.opts.Keys.Item(p.run, p.node)
	a.mu.Lock()
	defer a.mu.Unlock()
	// One claim at a time per item: the one deleted is this agent's if it
	// runs the item.
	if r := a.running[ik]; r != nil && r.offer == "" && ev.Kv.ModRevision > r.claimRev {
		r.cancel() // the claim is gone (lease lost): the result would be refused
	}
}

// claimLoop claims items while slots are free, in batches, and runs each
// claimed one in its own goroutine, until drain is done; it returns once
// every step it started has ended.
func (a *Agent) claimLoop(drain, hard context.Context, sem chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Steps run on workers that take one step after another (at most
	// Slots, as sem allows): a goroutine a step would grow its stack anew
	// for each one, a tenth of the agent's CPU on short steps.
	work, quit := make(chan claimable), make(chan struct{})
	defer close(quit)
	worker := func(cl claimable) {
		idle := time.NewTimer(workerIdle)
		defer idle.Stop()
		for {
			a.execute(hard, cl)
			<-sem
			wg.Done()
			idle.Reset(workerIdle)
			select {
			case cl = <-work:
			case <-idle.C:
				return
			case <-quit:
				return
			}
		}
	}
	for {
		select {
		case sem <- struct{}{}:
		case <-drain.Done():
			return
		}
		free := 1
		for free < a.opts.Slots {
			select {
			case sem <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		offers, batch := a.take(drain, free)
		a.claimed.Add(int64(len(offers)))
		claimed := append(offers, a.claim(hard, batch)...)
		for range free - len(claimed) {
			<-sem
		}
		if len(offers)+len(batch) == 0 {
			return
		}
		a.announce(claimed)
		for _, cl := range claimed {
			wg.Add(1)
			select {
			case work <- cl: // an idle worker takes it
			default:
				go worker(cl)
			}
		}
	}
}

// workerIdle is how long a step worker of the agent waits for another step
// before it ends.
const workerIdle = 30 * time.Second
