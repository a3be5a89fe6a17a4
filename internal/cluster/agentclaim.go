package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// claim takes the items of batch in one transaction, each with a nested
// compare-and-swap: the item is still the one seen (its revision) and
// nobody claimed it. A claim lives under the agent's lease, and marks its
// item claimed; its revision fences the result. It returns those taken.
func (a *Agent) claim(ctx context.Context, batch []claimable) []claimable {
	a.mu.Lock()
	lease := a.lease
	a.mu.Unlock()
	if lease == 0 || len(batch) == 0 {
		a.requeue(batch)
		return nil
	}
	ops := make([]clientv3.Op, len(batch))
	for i, cl := range batch {
		run, node := cl.c.item.Req.RunID, cl.c.item.Req.NodeID
		ck := a.opts.Keys.Claim(run, node)
		val, _ := json.Marshal(Claim{Agent: a.opts.Name, Call: cl.c.item.Call})
		marked := cl.c.item
		marked.ClaimedBy = a.opts.Name
		ival, _ := json.Marshal(marked)
		ops[i] = clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(cl.key), "=", cl.c.rev), clientv3.Compare(clientv3.CreateRevision(ck), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(ck, string(val), clientv3.WithLease(lease)), clientv3.OpPut(cl.key, string(ival))}, nil)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := a.opts.Client.Txn(cctx).Then(ops...).Commit()
	if err == nil && a.loseClaim != nil && a.loseClaim() {
		resp, err = nil, errors.New("test: the answer was lost")
	}
	if err != nil {
		// The claims may have committed all the same, their answer lost
		// (a member that hung, a client that moved to the new leader):
		// an item this agent claimed says so, and no other agent takes
		// it while this agent's lease lives. Read what was claimed
		// before anything else: claimed, it is this agent's to run.
		if got := a.claimedAnyway(ctx, batch, lease); len(got) > 0 {
			a.log.Info("claim: the answer was lost, the claims had committed", zap.Int("items", len(got)))
			var rest []claimable
			for _, cl := range batch {
				if !slices.ContainsFunc(got, func(g claimable) bool { return g.key == cl.key }) {
					rest = append(rest, cl)
				}
			}
			a.requeue(rest)
			a.claimed.Add(int64(len(got)))
			return got
		}
		a.log.Warn("claim failed: trying again", zap.Int("items", len(batch)), zap.Error(err))
		a.requeue(batch) // seen again here, or at the item's next change
		sleep(ctx, 200*time.Millisecond)
		return nil
	}
	var out []claimable
	for i, r := range resp.Responses {
		if tr := r.GetResponseTxn(); tr != nil && tr.Succeeded {
			cl := batch[i]
			cl.rev = resp.Header.Revision
			trace(cl.c.item.Req.NodeID, "claimed")
			out = append(out, cl)
		}
	}
	a.claimed.Add(int64(len(out)))
	return out
}

// claimedAnyway reads, after a claim whose answer was lost, which of
// batch's calls this agent claimed: a claim under lease naming this agent
// and the call (its create revision the claim's). It tries again while
// etcd cannot be read, until ctx ends (nothing known claimed then: the
// caller tries the claims again, and an item that says claimed is not
// taken by another agent while this one's lease lives).
func (a *Agent) claimedAnyway(ctx context.Context, batch []claimable, lease clientv3.LeaseID) (got []claimable) {
	gets := make([]clientv3.Op, len(batch))
	for i, cl := range batch {
		gets[i] = clientv3.OpGet(a.opts.Keys.Claim(cl.c.item.Req.RunID, cl.c.item.Req.NodeID))
	}
	for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 2*time.Second) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := a.opts.Client.Txn(rctx).Then(gets...).Commit()
		cancel()
		if err != nil {
			a.log.Warn("claim: the answer was lost; reading what was claimed, trying again", zap.Error(err))
			sleep(ctx, wait)
			continue
		}
		for i, r := range resp.Responses {
			kvs := r.GetResponseRange().GetKvs()
			if len(kvs) != 1 || kvs[0].Lease != int64(lease) {
				continue
			}
			var c Claim
			if json.Unmarshal(kvs[0].Value, &c) != nil || c.Agent != a.opts.Name || c.Call != batch[i].c.item.Call {
				continue
			}
			cl := batch[i]
			cl.rev = kvs[0].CreateRevision
			trace(cl.c.item.Req.NodeID, "claimed")
			got = append(got, cl)
		}
		return got
	}
	return nil
}

// requeue makes items candidates again after a failed claim.
func (a *Agent) requeue(batch []claimable) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cl := range batch {
		if _, ok := a.cand[cl.key]; !ok {
			a.cand[cl.key] = cl.c
			a.queue = append(a.queue, cl.key)
		}
	}
}
