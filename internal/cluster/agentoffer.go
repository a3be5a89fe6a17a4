package cluster

import (
	"context"
	"encoding/json"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The agent's side of offers (offer.go): a call a coordinator claimed for
// this agent. Its item (marked ClaimedBy this agent) and its claim (By the
// coordinator, under this agent's lease) come in one revision, in either
// order (a watch gives the item first, a listing the claim first); once
// both are seen the call waits in offers for a free slot.

// leaseFresh tells whether etcd renewed the agent's lease less than half
// its TTL ago. An offer waiting for a slot starts only then: its claim
// lives under the lease, and a lease that etcd may have let expire (the
// agent cut off) may have taken the claim with it, the call given to
// another agent meanwhile. (An agent's own claim is a transaction that
// fails once its lease is gone.)
func (a *Agent) leaseFresh() bool {
	return time.Since(time.Unix(0, a.heard.Load())) < a.opts.TTL/2
}

// offerHalf is one half of an offer seen: the item, or the claim.
type offerHalf struct {
	item Item
	rev  int64 // the item's ModRevision, or the claim's CreateRevision
	call string
}

// seeOfferItemLocked notes an item claimed for this agent.
func (a *Agent) seeOfferItemLocked(ik string, it Item, rev int64) {
	a.offerItems[ik] = offerHalf{item: it, rev: rev, call: it.Call}
	a.matchOfferLocked(ik)
}

// seeClaimLocked notes a claim put: an offer to this agent, under its
// current lease, is kept; any other claim of the item ends what was noted
// of it.
func (a *Agent) seeClaimLocked(ik string, kv *mvccpb.KeyValue) {
	var cl Claim
	if json.Unmarshal(kv.Value, &cl) != nil || cl.By == "" || cl.Agent != a.opts.Name ||
		a.lease == 0 || clientv3.LeaseID(kv.Lease) != a.lease {
		delete(a.offerItems, ik)
		delete(a.offerClaims, ik)
		return
	}
	a.offerClaims[ik] = offerHalf{rev: kv.CreateRevision, call: cl.Call}
	a.matchOfferLocked(ik)
}

// matchOfferLocked queues the offer of ik once both halves are seen (and
// it is neither queued nor running already).
func (a *Agent) matchOfferLocked(ik string) {
	it, ok1 := a.offerItems[ik]
	cl, ok2 := a.offerClaims[ik]
	if !ok1 || !ok2 {
		return
	}
	delete(a.offerItems, ik)
	delete(a.offerClaims, ik)
	if it.call != cl.call {
		return
	}
	if a.offered[ik] == cl.rev {
		return // queued or taken already (seen again in a new listing)
	}
	a.offered[ik] = cl.rev
	a.offers = append(a.offers, claimable{key: ik, c: candidate{item: it.item, rev: it.rev}, rev: cl.rev})
	trace(it.item.Req.NodeID, "seen")
	trace(it.item.Req.NodeID, "claimed")
}

// dropOfferLocked forgets what was noted or queued of ik (its item or its
// claim went away: consumed, withdrawn, put back, or the claim went with
// a lease). Until then, an offer taken is remembered by its claim's
// revision, so that a new listing of the work (after the watch broke)
// never queues it again, even once it ended.
func (a *Agent) dropOfferLocked(ik string) {
	delete(a.offerItems, ik)
	delete(a.offerClaims, ik)
	if _, ok := a.offered[ik]; !ok {
		return
	}
	delete(a.offered, ik)
	for i, o := range a.offers {
		if o.key == ik {
			a.offers = append(a.offers[:i], a.offers[i+1:]...)
			break
		}
	}
}

// takeOffersLocked takes up to n queued offers, oldest first.
func (a *Agent) takeOffersLocked(n int) []claimable {
	n = min(n, len(a.offers))
	out := append([]claimable(nil), a.offers[:n]...)
	a.offers = a.offers[n:]
	return out
}

// handBackOffers gives back, unclaimed, the offers this agent could not
// start before it stopped, for another agent of the zone: each in a
// transaction that holds only while its claim is still this one. They
// never ran here, so they are put back as they were (no Check first added).
func (a *Agent) handBackOffers() {
	a.mu.Lock()
	offers := a.offers
	a.offers = nil
	a.mu.Unlock()
	k := a.opts.Keys
	for _, o := range offers {
		it := o.c.item
		run, node := it.Req.RunID, it.Req.NodeID
		it.ClaimedBy = ""
		val, _ := json.Marshal(it)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := a.opts.Client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k.Claim(run, node)), "=", o.rev)).
			Then(clientv3.OpDelete(k.Claim(run, node)), clientv3.OpPut(o.key, string(val))).Commit()
		cancel()
		if err != nil {
			a.log.Warn("hand back a step offered and not started: its claim will expire with the agent's lease", zap.String("node", node), zap.Error(err))
			continue
		}
		a.log.Info("step offered and not started handed back (agent stopping)", zap.String("run", run), zap.String("node", node))
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
