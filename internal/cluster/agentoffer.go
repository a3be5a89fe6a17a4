package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The agent's side of offers (offer.go): offer batches a coordinator wrote
// for this agent, under its lease. Their calls wait in offers for a free
// slot. Each offered call ends in a pendingResult for the result writer:
// its result, a hand back, or a withdrawal (the coordinator no longer
// waits for it); the writer puts the results of one batch in one key,
// fenced by the batch's revision, and deletes the batch with its last
// ones.

// leaseFresh tells whether etcd renewed the agent's lease less than half
// its TTL ago. An offer waiting for a slot starts only then: it lives
// under the lease, and a lease that etcd may have let expire (the agent
// cut off) may have taken the offer with it, the call given to another
// agent meanwhile. (An agent's own claim is a transaction that fails once
// its lease is gone.)
func (a *Agent) leaseFresh() bool {
	return time.Since(time.Unix(0, a.heard.Load())) < a.opts.TTL/2
}

// batchState is what the agent knows of one offer batch it answers.
type batchState struct {
	run  string
	rev  int64 // its create revision: fences every write for its calls
	left int   // calls not answered yet
	// packed: the batch was stored packed (zvalue.go), so its
	// coordinator reads packed results; an older one gets them plain.
	packed bool
}

// seeOfferLocked notes an offer batch put or deleted.
func (a *Agent) seeOfferLocked(kv *mvccpb.KeyValue, deleted bool) {
	key := string(kv.Key)
	if deleted {
		bs := a.batches[key]
		if bs == nil {
			return // answered in full (this agent deleted it)
		}
		// Gone with the lease this agent lost: its calls' results would be
		// refused, and the coordinator puts them back.
		delete(a.batches, key)
		kept := a.offers[:0]
		for _, o := range a.offers {
			if o.offer != key {
				kept = append(kept, o)
			}
		}
		a.offers = kept
		for _, r := range a.running {
			if r.offer == key {
				r.cancel()
			}
		}
		return
	}
	if a.lease == 0 || clientv3.LeaseID(kv.Lease) != a.lease {
		return // under a lease this agent no longer holds: gone with it
	}
	if _, ok := a.batches[key]; ok || a.settled[key] {
		return // seen already (listed again after the watch broke)
	}
	b, err := decodeOffer(kv.Value)
	if err != nil {
		if by, v, ok := peekProtocol(kv.Value); ok && v != ProtocolVersion {
			a.sameProtocolLocked(by, v)
			return
		}
		a.log.Error("unreadable offer batch: its calls go back to the coordinator when this agent stops", zap.String("key", key), zap.Error(err))
		return
	}
	if !a.sameProtocolLocked(b.By, b.Protocol) {
		return // left as it is: taken by nothing here
	}
	p, _ := a.opts.Keys.parse(key)
	a.batches[key] = &batchState{run: p.run, rev: kv.CreateRevision, left: len(b.Items), packed: isPacked(kv.Value)}
	for _, it := range b.Items {
		a.seen++
		a.offers = append(a.offers, claimable{key: a.opts.Keys.Item(p.run, it.Req.NodeID), c: candidate{item: it}, rev: kv.CreateRevision, offer: key})
		trace(it.Req.NodeID, "seen")
		trace(it.Req.NodeID, "claimed")
	}
}

// forgetUnlisted ends the offer batches this agent answers that a new
// listing of the work no longer holds: gone with its lease while the watch
// was broken (their deletion was not seen).
func (a *Agent) forgetUnlisted(listed map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key := range a.batches {
		if !listed[key] {
			a.seeOfferLocked(&mvccpb.KeyValue{Key: []byte(key)}, true)
		}
	}
	for key := range a.settled {
		if !listed[key] {
			delete(a.settled, key)
		}
	}
}

// seeWithdrawLocked: the coordinator withdrew call (its run stopped, or
// the call timed out): cancelled if it runs, answered as withdrawn if it
// waits.
func (a *Agent) seeWithdrawLocked(kv *mvccpb.KeyValue, call string) {
	offerKey := string(kv.Value)
	for i, o := range a.offers {
		if o.c.item.Call == call {
			a.offers = append(a.offers[:i], a.offers[i+1:]...)
			p := &pendingResult{it: o.c.item, offer: o.offer, rev: o.rev, withdrawn: string(kv.Key), done: make(chan struct{})}
			go a.queueResult(p)
			return
		}
	}
	for _, r := range a.running {
		if r.item.Call == call && r.offer == offerKey {
			r.superseded = true
			r.withdrawn = string(kv.Key)
			r.cancel()
			return
		}
	}
	// Answered already: the marker goes with the lease, or now.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.opts.Client.Delete(ctx, string(kv.Key))
	}()
}

// takeOffersLocked takes up to n queued offers, oldest first.
func (a *Agent) takeOffersLocked(n int) []claimable {
	n = min(n, len(a.offers))
	out := append([]claimable(nil), a.offers[:n]...)
	a.offers = a.offers[n:]
	return out
}

// handBackOffers gives back the offers this agent could not start before
// it stopped, for another agent of the zone. They never ran here: no Check
// first is asked for them.
func (a *Agent) handBackOffers(hard context.Context) {
	a.mu.Lock()
	offers := a.offers
	a.offers = nil
	a.mu.Unlock()
	var batch []*pendingResult
	for _, o := range offers {
		batch = append(batch, &pendingResult{it: o.c.item, offer: o.offer, rev: o.rev,
			res: Result{HandedBack: true}, nlog: a.log.With(zap.String("run", o.c.item.Req.RunID), zap.String("node", o.c.item.Req.NodeID))})
	}
	for len(batch) > 0 {
		n := min(len(batch), a.resultBatch())
		a.writeResults(hard, batch[:n])
		batch = batch[n:]
	}
	if len(offers) > 0 {
		a.log.Info(fmt.Sprintf("%d steps offered and not started handed back (agent stopping)", len(offers)))
	}
}

// setDraining marks the agent's registration draining, so that the
// coordinators offer it nothing more.
func (a *Agent) setDraining() {
	a.mu.Lock()
	lease := a.lease
	a.mu.Unlock()
	if lease == 0 {
		return
	}
	k := a.opts.Keys.Agent(a.opts.Name)
	info := a.info()
	info.Draining = true
	val, _ := json.Marshal(info)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.opts.Client.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(k), "=", lease)).
		Then(clientv3.OpPut(k, string(val), clientv3.WithLease(lease))).Commit(); err != nil {
		a.log.Warn("mark the agent draining", zap.Error(err))
	}
}
