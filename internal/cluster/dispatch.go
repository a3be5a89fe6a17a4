package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
)

// runWork is the dispatcher's view of one run's work in etcd.
type runWork struct {
	d     *Dispatcher
	run   string
	once  sync.Once
	err   error
	ready atomic.Bool // started without error

	mu      sync.Mutex
	calls   map[string]*call   // node → call in flight
	orphans map[string]*orphan // node → work left by an earlier coordinator
	// pre are the calls Prestart registered and no Restore has joined
	// yet, by node: one may be answered (out of calls) before it joins.
	pre map[string]*call
	// waiting are results waiting for their peers (waveHold).
	waiting   []answered
	waveTimer *time.Timer
	// applied are the results applied lately, by call and claim revision
	// (at most maxApplied, oldest forgotten first): a result an agent
	// wrote again after its first write's answer was lost is refused by
	// fencing (its offer batch gone with that first write) and written
	// aside; it is the one applied, not a late result (refused, lost.go).
	applied      map[string]bool
	appliedOrder []string
}

// call is one call in flight on an agent.
type call struct {
	id       string
	node     string
	ctx      context.Context // the engine's: offering again stops with it
	item     Item
	cval     []byte // item in JSON, compact, as in an offer batch
	itemRev  int64
	claimRev int64 // 0 while unclaimed
	agent    string
	onEvent  func(step.Event)
	done     chan Result
	offered  *liveAgent // the agent the call was offered to, until it ends
	// offerKey is the offer batch the call is in (set before the batch's
	// transaction goes, "" once the call is put back); agentKey and lease
	// are the agent's registration and lease it was offered under.
	offerKey string
	agentKey string
	lease    clientv3.LeaseID
	// sent is when it was sent to the agents (zero: adopted).
	sent time.Time
	evs  bool // events were streamed (their keys to delete)
	// pre: offered with the commit that started it (Prestart), its
	// Restore call has not joined yet; early are the log lines that came
	// meanwhile.
	pre   bool
	early []step.Event
	// handed: its result went to done (counted in Dispatcher.arriving
	// until wait takes it); abandoned: wait gave up on it.
	handed, abandoned bool
}

// orphan is a node's work found in etcd when the run's work was first
// needed: left by a coordinator that died (failover).
type orphan struct {
	item     *Item
	itemRev  int64
	claim    *Claim
	claimRev int64
	result   *Result
	// offerKey, lease: the item is in an offer batch to a live agent.
	offerKey string
	lease    clientv3.LeaseID
}

// work returns run's work, started on first use: the graph published for
// the agents, the work left by an earlier coordinator read, the watch
// started.
func (d *Dispatcher) work(ctx context.Context, run string) (*runWork, error) {
	d.mu.Lock()
	rw := d.runs[run]
	if rw == nil {
		rw = &runWork{d: d, run: run, calls: map[string]*call{}, orphans: map[string]*orphan{}, pre: map[string]*call{}}
		d.runs[run] = rw
	}
	d.mu.Unlock()
	rw.once.Do(func() {
		rw.err = rw.start(ctx)
		rw.ready.Store(rw.err == nil)
	})
	return rw, rw.err
}

func (rw *runWork) start(ctx context.Context) error {
	d := rw.d
	if err := d.publish(ctx); err != nil {
		return err
	}
	resp, err := d.o.Client.Get(ctx, d.k.Run(rw.run), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read the work of run %s: %w", rw.run, err)
	}
	orphan := func(node string) *orphan {
		o := rw.orphans[node]
		if o == nil {
			o = &orphan{}
			rw.orphans[node] = o
		}
		return o
	}
	for _, kv := range resp.Kvs {
		p, ok := d.k.parse(string(kv.Key))
		if !ok {
			continue
		}
		switch p.kind {
		case "refused":
			rw.refused(kv)
		case "item":
			var it Item
			if json.Unmarshal(kv.Value, &it) == nil {
				o := orphan(p.node)
				o.item, o.itemRev = &it, kv.ModRevision
			}
		case "claim":
			var cl Claim
			if json.Unmarshal(kv.Value, &cl) == nil {
				o := orphan(p.node)
				o.claim, o.claimRev = &cl, kv.CreateRevision
			}
		case "result":
			var r Result
			if json.Unmarshal(kv.Value, &r) == nil {
				orphan(p.node).result = &r
			}
		case "offer":
			b, err := decodeOffer(kv.Value)
			if err != nil {
				continue
			}
			for _, it := range b.Items {
				o := orphan(it.Req.NodeID)
				o.item, o.itemRev = &it, kv.ModRevision
				o.claim, o.claimRev = &Claim{Agent: p.agent, Call: it.Call, By: b.By}, kv.CreateRevision
				o.offerKey, o.lease = string(kv.Key), clientv3.LeaseID(kv.Lease)
			}
		case "batch":
			if rs, err := decodeResults(kv.Value); err == nil {
				for _, r := range rs {
					if r.Node != "" && !r.HandedBack {
						orphan(r.Node).result = &r
					}
				}
			}
			// Kept in memory now: a coordinator that takes over after this
			// one finds the node running, and asks Check.
			d.w.cleanUp("batch/"+string(kv.Key), clientv3.OpDelete(string(kv.Key)))
		}
	}
	if n := len(rw.orphans); n > 0 {
		d.log.Info("work left by an earlier coordinator: adopted by the nodes' next calls", zap.String("run", rw.run), zap.Int("nodes", n))
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); rw.watch(resp.Header.Revision + 1) }()
	return nil
}

// call sends one call of node req.NodeID to the agents of zone and waits
// for its result.
func (d *Dispatcher) call(ctx context.Context, op, zone string, req step.Request, onEvent func(step.Event)) (Result, error) {
	rw, err := d.work(ctx, req.RunID)
	if err != nil {
		return Result{}, err
	}
	node := req.NodeID
	if op == opRestore {
		if c := rw.join(ctx, req, onEvent); c != nil {
			r, err := rw.wait(ctx, c)
			if onEvent != nil {
				for _, w := range r.Events { // came before the call joined
					onEvent(w.event())
				}
			}
			r.Events = nil
			return r, err
		}
	}
	trace(node, "call")
	c := &call{node: node, ctx: ctx, onEvent: onEvent, done: make(chan Result, 1)}
	rw.mu.Lock()
	o := rw.orphans[node]
	delete(rw.orphans, node)
	if o != nil && op != opVerify {
		if r := o.result; r != nil && r.Op == opRestore && (o.item == nil || r.Call == o.item.Call) {
			rw.mu.Unlock()
			d.log.Info("adopted a result left by an earlier coordinator", zap.String("run", rw.run), zap.String("node", node), zap.String("agent", r.Agent))
			d.w.async(rw.run+"/"+node, clientv3.OpDelete(d.k.Node(rw.run, node), clientv3.WithPrefix()))
			return answer(*r)
		}
		if o.item != nil && o.item.Op == opRestore && o.claim != nil && o.claim.Call == o.item.Call {
			// Still running on a live agent: wait for it, do not run it twice.
			c.id, c.item, c.itemRev, c.claimRev, c.agent = o.item.Call, *o.item, o.itemRev, o.claimRev, o.claim.Agent
			c.offerKey, c.lease, c.agentKey = o.offerKey, o.lease, d.k.Agent(o.claim.Agent)
			rw.calls[node] = c
			rw.mu.Unlock()
			d.log.Info("adopted a step still running on an agent", zap.String("run", rw.run), zap.String("node", node), zap.String("agent", c.agent))
			return rw.wait(ctx, c)
		}
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	d.newItem(c, op, zone, req, timeout)
	rw.calls[node] = c
	rw.mu.Unlock()
	if o != nil && (o.item != nil || o.claim != nil || o.result != nil) {
		if _, err := d.w.do(ctx, rw.run+"/"+node, clientv3.OpDelete(d.k.Node(rw.run, node), clientv3.WithPrefix())); err != nil {
			rw.forget(c)
			return Result{}, fmt.Errorf("dispatch node %q: %w", node, err)
		}
	}
	if err := rw.send(ctx, c); err != nil {
		rw.forget(c)
		return Result{}, fmt.Errorf("dispatch node %q to the agents of zone %q: %w", node, zone, err)
	}
	trace(node, "dispatched")
	return rw.wait(ctx, c)
}

// send writes c for the agents of its zone: offered to the live agent with
// the most free slots, or unclaimed (no agent has a free slot, or the one
// chosen has just gone).
func (rw *runWork) send(ctx context.Context, c *call) error {
	d := rw.d
	key := rw.run + "/" + c.node
	rw.mu.Lock()
	it, cval := c.item, c.cval
	rw.mu.Unlock()
	la := d.offerTo(it.Zone)
	if la == nil {
		val, _ := json.Marshal(it)
		rev, err := d.w.do(ctx, key, clientv3.OpPut(d.k.Item(rw.run, c.node), string(val)))
		if err != nil {
			return err
		}
		rw.mu.Lock()
		c.itemRev = max(c.itemRev, rev) // the watch may have seen it claimed already
		rw.mu.Unlock()
		return nil
	}
	res := d.w.doOffer(ctx, key, &offer{rw: rw, c: c, la: la, it: it, cval: cval})
	return rw.settle(ctx, c, la, res)
}

// settle takes the outcome of c's offer to la: it holds (c runs there),
// failed, or the agent has just gone (c is written unclaimed, for another
// agent of the zone).
func (rw *runWork) settle(ctx context.Context, c *call, la *liveAgent, res wres) error {
	d := rw.d
	rw.mu.Lock()
	defer rw.mu.Unlock()
	live := rw.calls[c.node] == c
	switch {
	case res.err != nil:
		d.release(la)
		if live {
			c.offerKey = ""
		}
		return res.err
	case !res.held:
		d.release(la)
		if !live {
			return nil
		}
		c.offerKey = ""
		val, _ := json.Marshal(c.item)
		rw.mu.Unlock()
		rev, err := d.w.do(ctx, rw.run+"/"+c.node, clientv3.OpPut(d.k.Item(rw.run, c.node), string(val)))
		rw.mu.Lock()
		if err == nil && rw.calls[c.node] == c {
			c.itemRev = max(c.itemRev, rev)
		}
		return err
	case live && c.offerKey == res.key:
		c.offered = la // released when the call ends or its offer goes
		c.claimRev = res.rev
	default:
		d.release(la) // ended, or its offer went with the agent already
	}
	return nil
}

// again offers c again after it was put back (its agent lost, or handed
// back); an operator's stop (the call's context) ends the attempts.
func (rw *runWork) again(c *call) {
	d := rw.d
	for wait := time.Second; ; wait = min(2*wait, 10*time.Second) {
		rw.mu.Lock()
		live := rw.calls[c.node] == c
		c.cval, _ = json.Marshal(c.item.compact())
		ctx := c.ctx // the engine's once a prestarted call joined
		rw.mu.Unlock()
		if !live || ctx.Err() != nil || d.ctx.Err() != nil {
			return
		}
		err := rw.send(ctx, c)
		if err == nil {
			return
		}
		d.log.Warn("offer a step again: trying again", zap.String("run", rw.run), zap.String("node", c.node), zap.Error(err))
		sleep(ctx, wait)
	}
}

func (rw *runWork) forget(c *call) {
	rw.mu.Lock()
	if rw.calls[c.node] == c {
		delete(rw.calls, c.node)
	}
	rw.releaseLocked(c)
	out := rw.dueLocked()
	rw.mu.Unlock()
	rw.hand(out)
}

// releaseLocked uncounts c on the agent it was offered to (the call ended,
// or its offer went with the agent).
func (rw *runWork) releaseLocked(c *call) {
	if c.offered != nil {
		rw.d.release(c.offered)
		c.offered = nil
	}
}

// wait waits for c's result; cancelled, it withdraws the call (the agent
// running it cancels it).
func (rw *runWork) wait(ctx context.Context, c *call) (Result, error) {
	d := rw.d
	select {
	case r := <-c.done:
		d.arriving.Add(-1)
		return answer(r)
	case <-ctx.Done():
	case <-d.ctx.Done():
	}
	rw.mu.Lock()
	c.abandoned = true
	handed := c.handed
	rw.mu.Unlock()
	if handed {
		d.arriving.Add(-1) // its result is left in c.done
	}
	rw.withdraw(c)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return Result{}, errors.New("dispatcher closed")
}

// withdraw ends c without its result: the agent running it cancels it.
func (rw *runWork) withdraw(c *call) {
	d := rw.d
	rw.forget(c)
	rw.mu.Lock()
	offerKey, agentKey, agent, lease := c.offerKey, c.agentKey, c.agent, c.lease
	rw.mu.Unlock()
	ops := []clientv3.Op{clientv3.OpDelete(d.k.Node(rw.run, c.node), clientv3.WithPrefix())}
	if offerKey != "" && lease != 0 {
		// The agent cancels it, and counts it answered in its batch.
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(agentKey), "=", lease)},
			[]clientv3.Op{clientv3.OpPut(d.k.Withdraw(rw.run, agent, c.id), offerKey, clientv3.WithLease(lease))}, nil))
	}
	d.w.async(rw.run+"/"+c.node, ops...)
}

func answer(r Result) (Result, error) {
	if r.Error != "" {
		return r, &RemoteError{Agent: r.Agent, Msg: r.Error, Perm: r.Permanent}
	}
	if r.Status == "" && r.Op != opCheck {
		r.Status = step.Failed
	}
	return r, nil
}

// watch follows the run's work from revision from.
func (rw *runWork) watch(from int64) {
	d := rw.d
	for d.ctx.Err() == nil {
		wch := d.o.Client.Watch(clientv3.WithRequireLeader(d.ctx), d.k.Run(rw.run), clientv3.WithPrefix(), clientv3.WithRev(from))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				d.log.Warn("watch the agents' work: trying again", zap.String("run", rw.run), zap.Error(err))
				if wr.CompactRevision > from {
					from = wr.CompactRevision
				}
				break
			}
			rw.handle(wr.Events)
			from = wr.Header.Revision + 1
		}
		sleep(d.ctx, 200*time.Millisecond)
	}
}

// handle applies a batch of watch events: claims, events and lost claims
// first, results after (a result and its events come in one revision),
// offer batches gone last (an agent deletes its batch in the revision that
// writes its last results).
func (rw *runWork) handle(evs []*clientv3.Event) {
	d := rw.d
	var results, batches []*mvccpb.KeyValue
	var gone []string
	rw.mu.Lock()
	for _, ev := range evs {
		p, ok := d.k.parse(string(ev.Kv.Key))
		if !ok {
			continue
		}
		c := rw.calls[p.node]
		del := ev.Type == mvccpb.DELETE
		switch {
		case p.kind == "refused" && !del:
			kv := ev.Kv
			go rw.refused(kv)
		case p.kind == "result" && !del:
			results = append(results, ev.Kv)
		case p.kind == "batch" && !del:
			batches = append(batches, ev.Kv)
		case p.kind == "offer" && del:
			gone = append(gone, string(ev.Kv.Key))
		case c == nil:
		case p.kind == "claim" && !del:
			var cl Claim
			if json.Unmarshal(ev.Kv.Value, &cl) == nil && cl.Call == c.id {
				c.claimRev, c.agent = ev.Kv.CreateRevision, cl.Agent
				d.checkClaimer(cl.Agent, c.node)
				d.log.Debug("step claimed", zap.String("run", rw.run), zap.String("node", c.node), zap.String("agent", cl.Agent), zap.Int64("claim", c.claimRev))
			}
		case p.kind == "claim" && del:
			// One claim at a time per item: the one deleted is the call's.
			if c.offerKey == "" && c.claimRev != 0 && ev.Kv.ModRevision > c.claimRev {
				rev, agent, it, itemRev := c.claimRev, c.agent, c.item, c.itemRev
				c.claimRev = 0
				rw.releaseLocked(c)
				go rw.lost(c, agent, rev, it, itemRev)
			}
		case p.kind == "item" && !del:
			var it Item
			if json.Unmarshal(ev.Kv.Value, &it) == nil && it.Call == c.id {
				c.item, c.itemRev = it, ev.Kv.ModRevision
			}
		case p.kind == "ev" && !del:
			c.evs = true
			if (p.rev == c.claimRev || c.claimRev == 0) && (c.onEvent != nil || c.pre) {
				var wevs []wireEvent
				if json.Unmarshal(ev.Kv.Value, &wevs) == nil {
					for _, w := range wevs {
						if c.pre {
							if len(c.early) < maxEarlyEvents {
								c.early = append(c.early, w.event())
							}
							continue
						}
						c.onEvent(w.event())
					}
				}
			}
		}
	}
	var out []answered
	deliver := func(r Result) {
		c := rw.calls[r.Node]
		if c == nil || r.Call != c.id {
			if o := rw.orphans[r.Node]; o != nil && r.Op == opRestore && !r.HandedBack {
				o.result = &r // an adopted call's, before the engine asks for it
			}
			return // a call withdrawn or answered already
		}
		if r.HandedBack {
			out = append(out, rw.putBackLocked(c, r.CheckFirst, "")...)
			return
		}
		delete(rw.calls, r.Node)
		rw.releaseLocked(c)
		rw.appliedLocked(r)
		out = append(out, rw.answerLocked(c, r)...)
	}
	for _, kv := range results {
		p, _ := d.k.parse(string(kv.Key))
		var r Result
		if json.Unmarshal(kv.Value, &r) != nil {
			continue
		}
		r.Node = p.node
		deliver(r)
	}
	for _, kv := range batches {
		rs, err := decodeResults(kv.Value)
		if err != nil {
			d.log.Warn("unreadable result batch: its calls are offered again once their offer batch goes", zap.String("key", string(kv.Key)), zap.Error(err))
		}
		for _, r := range rs {
			deliver(r)
		}
		d.w.cleanUp("batch/"+string(kv.Key), clientv3.OpDelete(string(kv.Key)))
	}
	for _, key := range gone {
		for _, o := range rw.orphans {
			if o.offerKey == key {
				o.claim, o.offerKey = nil, ""
			}
		}
		for _, c := range rw.calls {
			if c.offerKey == key {
				out = append(out, rw.putBackLocked(c, true, c.agent)...)
			}
		}
	}
	out = append(out, rw.dueLocked()...)
	rw.mu.Unlock()
	rw.hand(out)
}

// putBackLocked takes c out of its offer batch and offers it again: its
// agent handed it back (checkFirst if it had started it), or is lost (its
// lease expired with the batch: journaled as "left running by lost agent
// N", and the next agent asks Check first).
func (rw *runWork) putBackLocked(c *call, checkFirst bool, lostAgent string) []answered {
	rev := c.claimRev
	c.offerKey, c.claimRev = "", 0
	rw.releaseLocked(c)
	c.sent = time.Time{}
	out := rw.dueLocked()
	c.item.CheckFirst = c.item.CheckFirst || checkFirst
	if lostAgent != "" {
		c.item.LostAgent = lostAgent
	}
	it := c.item
	go func() {
		if lostAgent != "" {
			rw.journalLost(c.node, lostAgent, rev, it.Zone)
		}
		rw.again(c)
	}()
	return out
}

// newItem gives c a new call id and the item that sends it to the agents
// of zone (timeout 0: none), with its compact JSON.
func (d *Dispatcher) newItem(c *call, op, zone string, req step.Request, timeout time.Duration) {
	c.id = fmt.Sprintf("%s-%d-%d", d.o.Name, time.Now().UnixNano(), d.seq.Add(1))
	c.item = Item{Call: c.id, Protocol: ProtocolVersion, Op: op, Zone: zone, Graph: d.hash, GraphFile: d.o.Graph.File, Req: req, By: d.o.Name}
	c.item.Req.Config = nil // secrets stay out of etcd: the agent resolves the config
	if timeout > 0 {
		c.item.Timeout = Duration(timeout)
	}
	c.cval, _ = json.Marshal(c.item.compact())
}
