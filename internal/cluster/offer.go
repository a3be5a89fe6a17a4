package cluster

import (
	"encoding/json"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Offers: the coordinator claims a call for a live agent of its zone that
// has a free slot, in the transaction that writes the item, instead of
// writing it unclaimed and waiting for an agent to see it and claim it:
// one etcd round trip less per step on the critical path. The claim is the
// one an agent would have made: created under the agent's lease (so that it
// goes with the agent), its create revision fencing the result, the item
// marked ClaimedBy. The transaction holds only if the agent's registration
// is still under that lease and nobody claimed the item; otherwise it
// writes the item unclaimed, for any agent of the zone to claim as before.
// The agent runs an offered call when it has a free slot (it never runs
// more than its slots at once); one it could not start before it stopped
// it hands back unclaimed.

// liveAgent is a registered agent as the dispatcher sees it.
type liveAgent struct {
	key, name, zone string
	slots           int
	lease           clientv3.LeaseID
	draining        bool
	busy            int // calls offered to it by this dispatcher and not ended
}

// offerTo picks the live agent of zone (any zone for "") with the most free
// slots, and counts the call on it; nil when none has a free slot.
func (d *Dispatcher) offerTo(zone string) *liveAgent {
	d.mu.Lock()
	defer d.mu.Unlock()
	var best *liveAgent
	for _, la := range d.agents {
		if la.draining || la.lease == 0 || (zone != "" && la.zone != zone) || la.busy >= la.slots {
			continue
		}
		if best == nil || la.slots-la.busy > best.slots-best.busy {
			best = la
		}
	}
	if best != nil {
		best.busy++
	}
	return best
}

// release uncounts a call offered to la.
func (d *Dispatcher) release(la *liveAgent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if la.busy > 0 {
		la.busy--
	}
}

// offerOp is the transaction that writes c's item claimed for agent la,
// or unclaimed if la's registration is no longer under its lease or the
// item is claimed.
func (d *Dispatcher) offerOp(run string, c *call, la *liveAgent) clientv3.Op {
	k := d.k
	free, _ := json.Marshal(c.item)
	marked := c.item
	marked.ClaimedBy = la.name
	claimed, _ := json.Marshal(marked)
	cl, _ := json.Marshal(Claim{Agent: la.name, Call: c.id, By: d.o.Name})
	return clientv3.OpTxn(
		[]clientv3.Cmp{
			clientv3.Compare(clientv3.LeaseValue(la.key), "=", la.lease),
			clientv3.Compare(clientv3.CreateRevision(k.Claim(run, c.node)), "=", 0),
		},
		[]clientv3.Op{
			clientv3.OpPut(k.Item(run, c.node), string(claimed)),
			clientv3.OpPut(k.Claim(run, c.node), string(cl), clientv3.WithLease(la.lease)),
		},
		[]clientv3.Op{clientv3.OpPut(k.Item(run, c.node), string(free))})
}
