package cluster

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Offers: the coordinator claims calls for a live agent of their zone that
// has free slots, in the transaction that writes them, instead of writing
// each call unclaimed and waiting for an agent to see it and claim it. The
// calls offered to one agent in one transaction travel in one key, an offer
// batch (Keys.Offer), created under the agent's lease: it goes with the
// agent, and its create revision fences every result of its calls. One key
// per agent and transaction, not two per call: on a run of many short
// steps the etcd members' work (Raft entries, watch events) is per key.
//
// The transaction holds only while the agent's registration is still under
// that lease; otherwise the calls are written unclaimed (Keys.Item) in the
// next one, for any agent of the zone to claim as before. (Not in the
// same one's other branch: that would send every call twice through Raft
// for a case that happens only when an agent has just gone.) The agent runs an offered call when
// it has a free slot (never more than its slots at once), writes the results
// of one offer batch together (Keys.Batch), fenced by the offer's revision,
// and deletes the offer once each of its calls is answered. A call it could
// not start before it stopped, or that it cancelled when told to stop at
// once, it hands back in a result marked so; the coordinator offers it
// again.

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

// offer is a call to offer to an agent, in a writer's request: the writer
// puts the offers of one agent in one transaction into one offer batch.
type offer struct {
	rw   *runWork
	c    *call
	la   *liveAgent
	it   Item   // the call's item
	cval []byte // the same in JSON, compact (OfferBatch)
}

// offerWire is an OfferBatch as the coordinator writes it: each item's
// JSON is the one it would write unclaimed.
type offerWire struct {
	By        string            `json:"by"`
	Graph     string            `json:"graph,omitempty"`
	GraphFile string            `json:"graph_file,omitempty"`
	Run       string            `json:"run,omitempty"`
	WorkDir   string            `json:"work_dir,omitempty"`
	Items     []json.RawMessage `json:"items"`
}

// offerPair is the run and agent (under one lease) of an offer: the
// offers of one pair in one transaction go in one offer batch.
type offerPair struct {
	run, agent string
	lease      clientv3.LeaseID
}

func (o *offer) pair() offerPair { return offerPair{o.rw.run, o.la.key, o.la.lease} }

// maxOfferBytes bounds an offer batch's JSON (a transaction stays under
// maxTxnBytes, well under etcd's request size limit, 1.5 MiB by default),
// counted before it is packed (zvalue.go): what is sent is smaller.
const maxOfferBytes = 256 << 10

// offerTxnCost is the bytes of an offer batch's nested transaction
// beside its keys and value (the compare's lease, the put's lease, the
// protobuf's framing), about.
const offerTxnCost = 64

// offerGroup is one offer batch being written.
type offerGroup struct {
	key    string
	offers []*wreq
	// size is the bytes its nested transaction sends: the agent's key
	// compared, the batch's key and its value as stored (packed).
	size int
}

// groupOffers builds the offer batches of reqs (each an offer): one nested
// transaction per agent (and run), holding while the agent's registration
// is under the lease the calls were offered for. The batch's key is set on
// each call before the transaction goes (see runWork.handle: a batch
// deleted with its agent's lease may be seen before the transaction's
// answer).
func (d *Dispatcher) groupOffers(reqs []*wreq) (ops []clientv3.Op, groups []offerGroup) {
	type acc struct {
		g     offerGroup
		la    *liveAgent
		batch offerWire
		size  int
	}
	var order []*acc
	open := map[offerPair]*acc{}
	for _, r := range reqs {
		o := r.offer
		k := o.pair()
		a := open[k]
		if a != nil && a.size+r.size > maxOfferBytes && len(a.batch.Items) > 0 {
			a = nil
		}
		if a == nil {
			id := fmt.Sprintf("%s.%d", strings.ReplaceAll(d.o.Name, "/", "_"), d.seq.Add(1))
			it := o.it
			a = &acc{la: o.la, batch: offerWire{By: it.By, Graph: it.Graph, GraphFile: it.GraphFile, Run: it.Req.RunID, WorkDir: it.Req.WorkDir}}
			a.g.key = d.k.Offer(o.rw.run, o.la.name, id)
			open[k] = a
			order = append(order, a)
		}
		o.rw.mu.Lock()
		o.c.offerKey, o.c.claimRev = a.g.key, 0
		o.c.agent, o.c.agentKey, o.c.lease = o.la.name, o.la.key, o.la.lease
		if o.c.sent.IsZero() {
			o.c.sent = time.Now()
		}
		o.rw.mu.Unlock()
		it, w := o.it, a.batch
		if it.By == w.By && it.Graph == w.Graph && it.GraphFile == w.GraphFile && it.Req.RunID == w.Run && it.Req.WorkDir == w.WorkDir {
			a.batch.Items = append(a.batch.Items, o.cval)
		} else {
			val, _ := json.Marshal(it)
			a.batch.Items = append(a.batch.Items, val)
		}
		a.size += r.size
		a.g.offers = append(a.g.offers, r)
	}
	for _, a := range order {
		js, _ := json.Marshal(a.batch)
		val := packValue(js)
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(a.la.key), "=", a.la.lease)},
			[]clientv3.Op{clientv3.OpPut(a.g.key, string(val), clientv3.WithLease(a.la.lease))}, nil))
		a.g.size = len(a.la.key) + len(a.g.key) + len(val) + offerTxnCost
		groups = append(groups, a.g)
	}
	return ops, groups
}
