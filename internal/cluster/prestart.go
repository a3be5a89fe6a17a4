package cluster

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/step"
)

// Offers in the engine's commit. With the run's state on the same etcd
// cluster (DispatcherOptions.Prestart), the engine asks the dispatcher,
// as it commits the nodes it starts, for the offers of their Restore
// calls (Prestart), and commits them in the same transaction
// (etcdstate.Store.ApplyWith): a step is offered when, and only when, its
// start is durable, and a dependency level costs one round trip less
// than writing the offers after the commit. Each call is registered
// before the commit ("pre": no caller yet); the step's goroutine then
// calls Restore with the same request, which joins it (call). A result or
// a log line that comes before it joins waits for it.

// Prestart is the engine's prestarter: it prepares the Restore calls reqs
// that go to agents with a free slot, and returns the writes that offer
// them (an *etcdstate.Extra, nil when none is taken) and which it took.
// It waits for etcd once per run at most, followWait at most (followed);
// agents not yet listed, or a run not yet followed, and what would take
// the commit past a quarter of its operations or maxPrestartBytes, go the
// usual way (Restore offers them after the commit).
func (d *Dispatcher) Prestart(reqs []step.Request, timeouts []time.Duration) (any, []bool) {
	if !d.o.Prestart || len(reqs) == 0 {
		return nil, nil
	}
	select {
	case <-d.ready:
	default:
		return nil, nil
	}
	taken := make([]bool, len(reqs))
	var offers []*wreq
	rws := map[string]*runWork{}
	// Each agent's offer batch is an operation of the commit's top level,
	// as is each clean-up delete riding along: a quarter of the budget
	// each, the rest for the state's own writes.
	most := max(1, opsBudget(d.o.MaxTxnOps)/4)
	pairs := map[offerPair]bool{}
	bytes := 0
	for k, req := range reqs {
		zone, remote := d.remote(req.NodeID)
		if !remote {
			continue
		}
		rw, ok := rws[req.RunID]
		if !ok {
			rw = d.followed(req.RunID)
			rws[req.RunID] = rw
		}
		if rw == nil {
			continue
		}
		la := d.offerTo(zone)
		if la == nil {
			continue
		}
		if p := (offerPair{rw.run, la.key, la.lease}); !pairs[p] {
			if len(pairs) >= most {
				d.release(la) // the usual way
				continue
			}
			pairs[p] = true
		}
		c := &call{node: req.NodeID, ctx: d.ctx, pre: true, done: make(chan Result, 1)}
		var timeout time.Duration
		if k < len(timeouts) {
			timeout = timeouts[k]
		}
		d.newItem(c, opRestore, zone, req, timeout)
		size := len(c.cval) + 200
		if bytes+size > maxPrestartBytes {
			d.release(la) // big inputs: the usual way, in transactions of their own
			continue
		}
		rw.mu.Lock()
		if _, busy := rw.calls[c.node]; busy || rw.pre[c.node] != nil || rw.orphans[c.node] != nil {
			// A call in flight, or work an earlier coordinator left
			// (adopted by the usual way).
			rw.mu.Unlock()
			d.release(la)
			continue
		}
		rw.calls[c.node] = c
		rw.pre[c.node] = c
		rw.mu.Unlock()
		trace(c.node, "call")
		offers = append(offers, &wreq{node: rw.run + "/" + c.node, offer: &offer{rw: rw, c: c, la: la, it: c.item, cval: c.cval}, size: size})
		bytes += size
		taken[k] = true
	}
	if len(offers) == 0 {
		return nil, nil
	}
	// The batches are planned here (their keys set on the calls); their
	// values are encoded and packed on another goroutine while the state
	// builds its own writes (etcdstate.Extra.Ready). The state counts
	// their bytes before they are packed: a bound of what is sent.
	batches := d.planOffers(offers)
	// Clean-up waiting for a transaction goes in this one.
	rides := d.w.takeLazy(most)
	n, sent := len(batches), 0
	for _, b := range batches {
		sent += b.bound()
	}
	for _, r := range rides {
		n += len(r.ops)
		sent += r.size
	}
	ops := make([]clientv3.Op, len(batches), n)
	for _, r := range rides {
		ops = append(ops, r.ops...)
	}
	groups := make([]offerGroup, len(batches))
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		for i, b := range batches {
			ops[i], groups[i] = b.encode()
		}
	}()
	return &etcdstate.Extra{Ops: ops, Bytes: sent, Ready: ready, Done: func(rev int64, resps []*etcdserverpb.ResponseOp, err error) {
		<-ready // encoding takes a fraction of a millisecond, and never waits
		if err != nil {
			d.w.requeue(rides)
		}
		d.prestarted(groups, rev, resps, err)
	}}, taken
}

// followed returns the work of run once the dispatcher follows it (its
// work read, its watch started): at once if it does already, else after
// starting to, if that takes no more than followWait; nil otherwise (it
// goes on in the background). The engine's first commit of a run waits
// that long at most, once.
func (d *Dispatcher) followed(run string) *runWork {
	d.mu.Lock()
	rw := d.runs[run]
	d.mu.Unlock()
	if rw != nil && rw.ready.Load() {
		return rw
	}
	done := make(chan *runWork, 1)
	go func() {
		rw, err := d.work(d.ctx, run)
		if err != nil {
			rw = nil
		}
		done <- rw
	}()
	t := time.NewTimer(followWait)
	defer t.Stop()
	select {
	case rw := <-done:
		return rw
	case <-t.C:
		return nil
	}
}

// maxPrestartBytes bounds the offers that go with one commit: a step's
// inputs (its dependencies' outputs, up to a few MiB) travel in its
// offer, and the commit must stay under etcd's request limit with the
// state's own writes. It is counted on the offers' JSON, before their
// batches are packed (zvalue.go): what is sent, and reported to the
// state (Extra.Bytes), is at most that.
const maxPrestartBytes = maxTxnBytes / 4

// followWait bounds how long Prestart waits for the dispatcher to follow
// a run's work (a read and a watch: a few milliseconds when etcd answers).
const followWait = 50 * time.Millisecond

// prestarted takes the outcome of the commit that carried offers: each
// batch held (its calls run there), or its agent had just gone (the calls
// are written unclaimed, for another agent), or the commit failed (the
// engine stops: the calls are forgotten). It runs on the state writer's
// goroutine: nothing here waits for etcd.
func (d *Dispatcher) prestarted(groups []offerGroup, rev int64, resps []*etcdserverpb.ResponseOp, err error) {
	for i, g := range groups {
		held := err == nil
		if err == nil && resps != nil && i < len(resps) {
			held = resps[i].GetResponseTxn().GetSucceeded()
		}
		for _, r := range g.offers {
			o := r.offer
			trace(o.c.node, "dispatched")
			switch {
			case err != nil:
				o.rw.mu.Lock()
				if o.rw.pre[o.c.node] == o.c {
					delete(o.rw.pre, o.c.node)
				}
				o.rw.mu.Unlock()
				o.rw.forget(o.c)
				d.release(o.la)
			case resps == nil:
				// Committed, its answer lost: held if the agent's
				// registration is still under the lease (else the batch
				// went, or goes, with it, and the call is put back).
				go func() {
					held := d.stillRegistered(o.la)
					o.rw.settle(d.ctx, o.c, o.la, wres{rev: rev, held: held, key: g.key})
				}()
			case held:
				o.rw.settle(d.ctx, o.c, o.la, wres{rev: rev, held: true, key: g.key})
			default:
				go o.rw.settle(d.ctx, o.c, o.la, wres{rev: rev, held: false, key: g.key})
			}
		}
	}
}

// stillRegistered reports whether la's registration is still under its
// lease.
func (d *Dispatcher) stillRegistered(la *liveAgent) bool {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	resp, err := d.o.Client.Get(ctx, la.key)
	if err != nil {
		d.log.Warn("offers in a commit whose answer was lost: agent's registration unreadable, taken as gone", zap.String("agent", la.name), zap.Error(err))
		return false
	}
	return len(resp.Kvs) == 1 && clientv3.LeaseID(resp.Kvs[0].Lease) == la.lease
}

// join makes the Restore call of node, with req, join the call Prestart
// registered for it: nil when there is none (or another attempt's: it is
// withdrawn).
func (rw *runWork) join(ctx context.Context, req step.Request, onEvent func(step.Event)) *call {
	rw.mu.Lock()
	// Its result may have come already: the call is then out of calls,
	// its result waiting in done.
	c := rw.pre[req.NodeID]
	delete(rw.pre, req.NodeID)
	if c == nil || !c.pre {
		rw.mu.Unlock()
		return nil
	}
	if c.item.Req.Attempt != req.Attempt {
		rw.mu.Unlock()
		rw.withdraw(c)
		return nil
	}
	c.pre = false
	c.ctx, c.onEvent = ctx, onEvent
	early := c.early
	c.early = nil
	rw.mu.Unlock()
	if onEvent != nil {
		for _, ev := range early {
			onEvent(ev)
		}
	}
	return c
}

// maxEarlyEvents bounds the log lines kept for a call not yet joined.
const maxEarlyEvents = 1000
