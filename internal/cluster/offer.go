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
	// protocol is the agent's ProtocolVersion: of another, it is offered
	// nothing and counts as no agent of its zone (protocol.go).
	protocol int
}

// compatible reports whether la speaks this coordinator's protocol.
func (la *liveAgent) compatible() bool { return la.protocol == ProtocolVersion }

// offerTo picks the live agent of zone (any zone for "") with the most free
// slots, and counts the call on it; nil when none has a free slot.
func (d *Dispatcher) offerTo(zone string) *liveAgent {
	d.mu.Lock()
	defer d.mu.Unlock()
	var best *liveAgent
	for _, la := range d.agents {
		if la.draining || la.lease == 0 || !la.compatible() || (zone != "" && la.zone != zone) || la.busy >= la.slots {
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

// offerHead is an OfferBatch's shared fields as the coordinator writes
// them; its items follow, each item's JSON the one it would write
// unclaimed (offerBatch.value).
type offerHead struct {
	By        string `json:"by"`
	Protocol  int    `json:"protocol"`
	Graph     string `json:"graph,omitempty"`
	GraphFile string `json:"graph_file,omitempty"`
	Run       string `json:"run,omitempty"`
	WorkDir   string `json:"work_dir,omitempty"`
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
	// cmps and then are its nested transaction's guard and writes (the
	// writer adds its own marker to then: writer.commit).
	cmps []clientv3.Cmp
	then []clientv3.Op
}

// txn is g's nested transaction, with extra writes after its own.
func (g offerGroup) txn(extra ...clientv3.Op) clientv3.Op {
	return clientv3.OpTxn(g.cmps, append(g.then[:len(g.then):len(g.then)], extra...), nil)
}

// groupOffers builds the offer batches of reqs (each an offer): one nested
// transaction per agent (and run), holding while the agent's registration
// is under the lease the calls were offered for (offerGroup.txn).
func (d *Dispatcher) groupOffers(reqs []*wreq) []offerGroup {
	var groups []offerGroup
	for _, b := range d.planOffers(reqs) {
		_, g := b.encode()
		groups = append(groups, g)
	}
	return groups
}

// offerBatch is an offer batch planned, not yet encoded.
type offerBatch struct {
	g     offerGroup
	la    *liveAgent
	h     offerHead
	head  []byte   // h in JSON
	items [][]byte // its items' JSON
	size  int      // its offers' wreq sizes (maxOfferBytes)
}

// planOffers puts reqs in offer batches, one per agent (and run) until a
// batch reaches maxOfferBytes, and sets each call's batch key: before the
// transaction goes (see runWork.handle: a batch deleted with its agent's
// lease may be seen before the transaction's answer). Encoding the
// batches (encode) can follow on another goroutine.
func (d *Dispatcher) planOffers(reqs []*wreq) []*offerBatch {
	var order []*offerBatch
	open := map[offerPair]*offerBatch{}
	for _, r := range reqs {
		o := r.offer
		k := o.pair()
		b := open[k]
		if b != nil && b.size+r.size > maxOfferBytes && len(b.items) > 0 {
			b = nil
		}
		it := o.it
		h := offerHead{By: it.By, Protocol: it.Protocol, Graph: it.Graph, GraphFile: it.GraphFile, Run: it.Req.RunID, WorkDir: it.Req.WorkDir}
		if b == nil {
			id := fmt.Sprintf("%s.%d", strings.ReplaceAll(d.o.Name, "/", "_"), d.seq.Add(1))
			b = &offerBatch{la: o.la, h: h}
			b.head, _ = json.Marshal(h)
			b.g.key = d.k.Offer(o.rw.run, o.la.name, id)
			open[k] = b
			order = append(order, b)
		}
		o.rw.mu.Lock()
		o.c.offerKey, o.c.claimRev = b.g.key, 0
		o.c.agent, o.c.agentKey, o.c.lease = o.la.name, o.la.key, o.la.lease
		if o.c.sent.IsZero() {
			o.c.sent = time.Now()
		}
		o.rw.mu.Unlock()
		if h == b.h {
			b.items = append(b.items, o.cval)
		} else {
			val, _ := json.Marshal(it)
			b.items = append(b.items, val)
		}
		b.size += r.size
		b.g.offers = append(b.g.offers, r)
	}
	return order
}

// jsonSize is the length of b's value before it is packed: at least what
// encode sends.
func (b *offerBatch) jsonSize() int {
	n := len(b.head) + len(`,"items":[]`) + max(len(b.items)-1, 0)
	for _, it := range b.items {
		n += len(it)
	}
	return n
}

// bound is at least what b's nested transaction sends (offerGroup.size).
func (b *offerBatch) bound() int {
	return len(b.la.key) + len(b.g.key) + b.jsonSize() + offerTxnCost
}

// value is b's OfferBatch in JSON: its head, then its items, each as it
// is (compact JSON from json.Marshal: not parsed again).
func (b *offerBatch) value() []byte {
	js := make([]byte, 0, b.jsonSize())
	js = append(js, b.head[:len(b.head)-1]...) // the head without its "}"
	js = append(js, `,"items":[`...)
	for i, it := range b.items {
		if i > 0 {
			js = append(js, ',')
		}
		js = append(js, it...)
	}
	return append(js, "]}"...)
}

// encode returns b's nested transaction, its value packed, and its group
// with the bytes it sends.
func (b *offerBatch) encode() (clientv3.Op, offerGroup) {
	val := packValue(b.value())
	g := b.g
	g.cmps = []clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(b.la.key), "=", b.la.lease)}
	g.then = []clientv3.Op{clientv3.OpPut(b.g.key, string(val), clientv3.WithLease(b.la.lease))}
	g.size = len(b.la.key) + len(g.key) + len(val) + offerTxnCost
	return g.txn(), g
}
