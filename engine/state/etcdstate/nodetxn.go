package etcdstate

import (
	clientv3 "go.etcd.io/etcd/client/v3"
)

// nodeWrite is one node record a change writes (stored empty: removed).
type nodeWrite struct {
	id     string
	stored []byte
}

// runNodes are the node records one transaction writes for a run (the
// last of each node), and the blocks they make obsolete (nodeblock.go).
type runNodes struct {
	idx         *nodeIndex
	keyLen      int // of the prefix of the run's own node keys
	blockKeyLen int // of a block's key, at most
	recs        map[string][]byte
	order       []string // nodes, in the order of their first write
	sums        nodeSums
	gone        map[string]int // block → its current records the transaction supersedes
	dead        []string       // blocks it deletes: all their current records superseded, or orphans
	parts       []nodePart     // the keys of its block, once request built them
}

// nodeSums are what a run's node records add to a transaction.
type nodeSums struct {
	nodes     int // distinct nodes
	block     int // their bytes in a block
	own       int // their bytes under their own keys
	dead      int // blocks deleted
	deadBytes int
}

// nodePart is one key of a transaction's block and the nodes it holds.
type nodePart struct {
	key   string
	nodes []string
}

// runNodes returns what t writes of run id's node records, started on the
// writer's node index of the run.
func (s *Store) runNodes(t *txn, id string) *runNodes {
	if rn := t.nodes[id]; rn != nil {
		return rn
	}
	idx := s.nidx[id]
	if idx == nil {
		idx = &nodeIndex{} // the run has no index: nothing to delete
	}
	rn := &runNodes{idx: idx, keyLen: len(s.k.nodes(id)), blockKeyLen: len(s.k.nblk(id, 0, 1<<20)),
		recs: map[string][]byte{}, gone: map[string]int{}}
	for _, b := range idx.orphans {
		rn.dead = append(rn.dead, b)
		rn.sums.dead++
		rn.sums.deadBytes += len(b) + opCost
	}
	if t.nodes == nil {
		t.nodes = map[string]*runNodes{}
	}
	t.nodes[id] = rn
	return rn
}

// count adds w to sum: prev is the node's record the transaction holds
// already (had: it holds one), gone how many current records of a block it
// supersedes without w. It returns the block holding the node's current
// record before the transaction ("": none, or it was counted already).
func (rn *runNodes) count(sum *nodeSums, w nodeWrite, prev []byte, had bool, gone func(block string) int) string {
	if had {
		sum.block += len(w.stored) - len(prev)
		sum.own += len(w.stored) - len(prev)
		return ""
	}
	sum.nodes++
	sum.block += len(w.id) + len(w.stored) + nodeBlockOverhead
	sum.own += rn.keyLen + len(w.id) + len(w.stored) + opCost
	b, ok := rn.idx.where[w.id]
	if !ok {
		return ""
	}
	if gone(b)+1 == rn.idx.live[b] {
		sum.dead++
		sum.deadBytes += len(b) + opCost
	}
	return b
}

// add takes w into the transaction.
func (rn *runNodes) add(w nodeWrite) {
	prev, had := rn.recs[w.id]
	if b := rn.count(&rn.sums, w, prev, had, func(b string) int { return rn.gone[b] }); b != "" {
		if rn.gone[b]++; rn.gone[b] == rn.idx.live[b] {
			rn.dead = append(rn.dead, b)
		}
	}
	if !had {
		rn.order = append(rn.order, w.id)
	}
	rn.recs[w.id] = w.stored
}

// with returns the sums once ws are added, without adding them.
func (rn *runNodes) with(ws []nodeWrite) nodeSums {
	sum := rn.sums
	var seen []nodeWrite
	var blocks []string
	for _, w := range ws {
		prev, had := rn.recs[w.id]
		for _, o := range seen {
			if o.id == w.id {
				prev, had = o.stored, true
			}
		}
		b := rn.count(&sum, w, prev, had, func(b string) int {
			n := rn.gone[b]
			for _, o := range blocks {
				if o == b {
					n++
				}
			}
			return n
		})
		if b != "" {
			blocks = append(blocks, b)
		}
		seen = append(seen, w)
	}
	return sum
}

// cost is the operations and bytes of sum's writes: one key (or a few
// parts) for the records when inBlock, a key each otherwise, and the
// deletes.
func (rn *runNodes) cost(sum nodeSums, inBlock bool) (ops, bytes int) {
	if sum.nodes == 0 {
		return 0, 0
	}
	if !inBlock {
		return sum.nodes + sum.dead, sum.own + sum.deadBytes
	}
	// A part is cut before a record that would take it over ChunkSize:
	// none when all fit, else two in a row hold more than ChunkSize.
	parts := 1
	if 1+sum.block > ChunkSize {
		parts = 2 + 2*sum.block/ChunkSize
	}
	return parts + sum.dead, sum.block + parts*(1+rn.blockKeyLen+opCost) + sum.deadBytes
}

// nodeCost is how many operations and bytes adding st changes in t's
// writes of node records (a first entry of the run moves them from their
// own keys to a block).
func (t *txn) nodeCost(st *staged) (ops, bytes int) {
	rn := t.nodes[st.run]
	if rn == nil {
		return 0, 0
	}
	had := len(t.entries[st.run]) > 0
	ops0, bytes0 := rn.cost(rn.sums, had)
	ops1, bytes1 := rn.cost(rn.with(st.nodes), had || len(st.entries) > 0)
	return ops1 - ops0, bytes1 - bytes0
}

// addNodes takes st's node records into t, before its entries.
func (t *txn) addNodes(st *staged) {
	ops, bytes := t.nodeCost(st)
	t.nodeOps += ops
	t.bytes += bytes
	if rn := t.nodes[st.run]; rn != nil {
		for _, w := range st.nodes {
			rn.add(w)
		}
	}
}

// appendNodeOps appends t's writes of node records to ops: a run's in
// one block named by its last entry when t appends entries to it (parts
// of at most about ChunkSize plain, each then compressed when that saves:
// the cut and cost's count are on the plain bytes), else under each
// node's own key; then the deletes of the blocks they make obsolete.
func (t *txn) appendNodeOps(k keys, ops []clientv3.Op) []clientv3.Op {
	for _, id := range t.touched {
		rn := t.nodes[id]
		if rn == nil || rn.sums.nodes == 0 {
			continue
		}
		rn.parts = nil
		if len(t.entries[id]) == 0 {
			for _, node := range rn.order {
				ops = append(ops, clientv3.OpPut(k.node(id, node), string(rn.recs[node])))
			}
		} else {
			seq := t.after[id].seq
			val := []byte{nodeBlockMagic}
			var part nodePart
			flush := func() {
				part.key = k.nblk(id, seq, len(rn.parts))
				ops = append(ops, clientv3.OpPut(part.key, string(nodeBlockValue(val))))
				rn.parts = append(rn.parts, part)
				val, part = []byte{nodeBlockMagic}, nodePart{}
			}
			for _, node := range rn.order {
				stored := rn.recs[node]
				if len(part.nodes) > 0 && len(val)+len(node)+len(stored)+nodeBlockOverhead > ChunkSize {
					flush()
				}
				val = appendNodeRecord(val, node, stored)
				part.nodes = append(part.nodes, node)
			}
			flush()
		}
		for _, b := range rn.dead {
			ops = append(ops, clientv3.OpDelete(b))
		}
	}
	return ops
}
