package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
)

// runWork is the dispatcher's view of one run's work in etcd.
type runWork struct {
	d    *Dispatcher
	run  string
	once sync.Once
	err  error

	mu      sync.Mutex
	calls   map[string]*call   // node → call in flight
	orphans map[string]*orphan // node → work left by an earlier coordinator
}

// call is one call in flight on an agent.
type call struct {
	id       string
	node     string
	item     Item
	itemRev  int64
	claimRev int64 // 0 while unclaimed
	agent    string
	onEvent  func(step.Event)
	done     chan Result
	offered  *liveAgent // the agent the call was offered to, until it ends
}

// orphan is a node's work found in etcd when the run's work was first
// needed: left by a coordinator that died (failover).
type orphan struct {
	item     *Item
	itemRev  int64
	claim    *Claim
	claimRev int64
	result   *Result
}

// work returns run's work, started on first use: the graph published for
// the agents, the work left by an earlier coordinator read, the watch
// started.
func (d *Dispatcher) work(ctx context.Context, run string) (*runWork, error) {
	d.mu.Lock()
	rw := d.runs[run]
	if rw == nil {
		rw = &runWork{d: d, run: run, calls: map[string]*call{}, orphans: map[string]*orphan{}}
		d.runs[run] = rw
	}
	d.mu.Unlock()
	rw.once.Do(func() { rw.err = rw.start(ctx) })
	return rw, rw.err
}

func (rw *runWork) start(ctx context.Context) error {
	d := rw.d
	if err := publishGraph(ctx, d.o.Client, d.k, d.o.Graph, d.hash); err != nil {
		return err
	}
	resp, err := d.o.Client.Get(ctx, d.k.Run(rw.run), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read the work of run %s: %w", rw.run, err)
	}
	for _, kv := range resp.Kvs {
		p, ok := d.k.parse(string(kv.Key))
		if !ok {
			continue
		}
		if p.kind == "refused" {
			rw.refused(kv)
			continue
		}
		o := rw.orphans[p.node]
		if o == nil {
			o = &orphan{}
			rw.orphans[p.node] = o
		}
		switch p.kind {
		case "item":
			var it Item
			if json.Unmarshal(kv.Value, &it) == nil {
				o.item, o.itemRev = &it, kv.ModRevision
			}
		case "claim":
			var cl Claim
			if json.Unmarshal(kv.Value, &cl) == nil {
				o.claim, o.claimRev = &cl, kv.CreateRevision
			}
		case "result":
			var r Result
			if json.Unmarshal(kv.Value, &r) == nil {
				o.result = &r
			}
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
	trace(node, "call")
	c := &call{node: node, onEvent: onEvent, done: make(chan Result, 1)}
	rw.mu.Lock()
	o := rw.orphans[node]
	delete(rw.orphans, node)
	if o != nil && o.item != nil && o.item.Op == opRestore && op != opVerify {
		if o.result != nil && o.result.Call == o.item.Call {
			rw.mu.Unlock()
			d.log.Info("adopted a result left by an earlier coordinator", zap.String("run", rw.run), zap.String("node", node), zap.String("agent", o.result.Agent))
			d.w.async(rw.run+"/"+node, clientv3.OpDelete(d.k.Node(rw.run, node), clientv3.WithPrefix()))
			return answer(*o.result)
		}
		if o.claim != nil && o.claim.Call == o.item.Call {
			// Still running on a live agent: wait for it, do not run it twice.
			c.id, c.item, c.itemRev, c.claimRev, c.agent = o.item.Call, *o.item, o.itemRev, o.claimRev, o.claim.Agent
			rw.calls[node] = c
			rw.mu.Unlock()
			d.log.Info("adopted a step still running on an agent", zap.String("run", rw.run), zap.String("node", node), zap.String("agent", c.agent))
			return rw.wait(ctx, c)
		}
	}
	c.id = fmt.Sprintf("%s-%d-%d", d.o.Name, time.Now().UnixNano(), d.seq.Add(1))
	c.item = Item{Call: c.id, Op: op, Zone: zone, Graph: d.hash, GraphFile: d.o.Graph.File, Req: req, By: d.o.Name}
	c.item.Req.Config = nil // secrets stay out of etcd: the agent resolves the config
	if dl, ok := ctx.Deadline(); ok {
		c.item.Timeout = Duration(time.Until(dl))
	}
	rw.calls[node] = c
	rw.mu.Unlock()
	key := rw.run + "/" + node
	if o != nil {
		if _, err := d.w.do(ctx, key, clientv3.OpDelete(d.k.Node(rw.run, node), clientv3.WithPrefix())); err != nil {
			rw.forget(c)
			return Result{}, fmt.Errorf("dispatch node %q: %w", node, err)
		}
	}
	var write clientv3.Op
	la := d.offerTo(zone)
	if la != nil {
		write = d.offerOp(rw.run, c, la)
	} else {
		val, _ := json.Marshal(c.item)
		write = clientv3.OpPut(d.k.Item(rw.run, node), string(val))
	}
	res := d.w.doTxn(ctx, key, write)
	rw.mu.Lock()
	if la != nil && res.err == nil && res.held && rw.calls[node] == c {
		c.offered = la // released when the call ends or its claim goes
		la = nil
	}
	rw.mu.Unlock()
	if la != nil {
		d.release(la) // not offered after all: written unclaimed
	}
	if res.err != nil {
		rw.forget(c)
		return Result{}, fmt.Errorf("dispatch node %q to the agents of zone %q: %w", node, zone, res.err)
	}
	trace(node, "dispatched")
	rw.mu.Lock()
	if c.itemRev == 0 {
		c.itemRev = res.rev
	}
	rw.mu.Unlock()
	return rw.wait(ctx, c)
}

func (rw *runWork) forget(c *call) {
	rw.mu.Lock()
	if rw.calls[c.node] == c {
		delete(rw.calls, c.node)
	}
	rw.releaseLocked(c)
	rw.mu.Unlock()
}

// releaseLocked uncounts c on the agent it was offered to (the call ended,
// or its claim went with the agent).
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
		return answer(r)
	case <-ctx.Done():
	case <-d.ctx.Done():
	}
	rw.forget(c)
	d.w.async(rw.run+"/"+c.node, clientv3.OpDelete(d.k.Node(rw.run, c.node), clientv3.WithPrefix()))
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return Result{}, errors.New("dispatcher closed")
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
// first, results after (a result and its events come in one revision).
func (rw *runWork) handle(evs []*clientv3.Event) {
	d := rw.d
	var results []*mvccpb.KeyValue
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
		case c == nil:
		case p.kind == "claim" && !del:
			var cl Claim
			if json.Unmarshal(ev.Kv.Value, &cl) == nil && cl.Call == c.id {
				c.claimRev, c.agent = ev.Kv.CreateRevision, cl.Agent
				d.log.Debug("step claimed", zap.String("run", rw.run), zap.String("node", c.node), zap.String("agent", cl.Agent), zap.Int64("claim", c.claimRev))
			}
		case p.kind == "claim" && del:
			// One claim at a time per item: the one deleted is the call's.
			if c.claimRev != 0 && ev.Kv.ModRevision > c.claimRev {
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
			if p.rev == c.claimRev && c.onEvent != nil {
				var wevs []wireEvent
				if json.Unmarshal(ev.Kv.Value, &wevs) == nil {
					for _, w := range wevs {
						c.onEvent(step.Event{Kind: w.Kind, Level: w.Level, Message: w.Message, Percent: w.Percent, Key: w.Key, Value: w.Value})
					}
				}
			}
		}
	}
	var done []*call
	var got []Result
	for _, kv := range results {
		p, _ := d.k.parse(string(kv.Key))
		var r Result
		if json.Unmarshal(kv.Value, &r) != nil {
			continue
		}
		c := rw.calls[p.node]
		if c == nil || r.Call != c.id {
			continue // a call withdrawn or answered already
		}
		delete(rw.calls, p.node)
		rw.releaseLocked(c)
		done, got = append(done, c), append(got, r)
	}
	rw.mu.Unlock()
	for i, c := range done {
		trace(c.node, "answered")
		d.w.async(rw.run+"/"+c.node, clientv3.OpDelete(d.k.Node(rw.run, c.node), clientv3.WithPrefix()))
		c.done <- got[i]
	}
}

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
			Then(clientv3.OpPut(k.Item(rw.run, c.node), string(val))).Commit()
		cancel()
		if err != nil {
			d.log.Warn("put back a lost agent's step: etcd unreachable, trying again", zap.String("node", c.node), zap.Error(err))
			sleep(d.ctx, time.Second)
			continue
		}
		if !resp.Succeeded {
			return
		}
		zone := it.Zone
		if zone == "" {
			zone = "(any)"
		}
		msg := fmt.Sprintf("left running by lost agent %s (its lease expired; claim revision %d): given to another agent of zone %s, which asks Check first", agent, claimRev, zone)
		d.log.Warn(msg, zap.String("run", rw.run), zap.String("node", c.node))
		rw.journal(&state.Entry{Type: EntryAgentLost, NodeID: c.node, State: state.NodeRunning, Message: msg,
			Data: map[string]string{"agent": agent, "zone": it.Zone, "claim_rev": fmt.Sprint(claimRev)}})
		return
	}
}

// refused journals a late result that fencing refused, and removes it.
func (rw *runWork) refused(kv *mvccpb.KeyValue) {
	d := rw.d
	var r Result
	json.Unmarshal(kv.Value, &r)
	p, _ := d.k.parse(string(kv.Key))
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
