package etcdstate

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNodeCostBoundsOps: what a transaction counts for its node records
// (nodeCost, against MaxTxnOps and MaxTxnBytes) is never less than the
// writes appendNodeOps makes of them, whatever the mix: changes with and
// without journal entries (own keys, then a block once an entry comes),
// a node written twice, records big enough to split the block in parts,
// blocks of the index superseded whole (deleted) or in part (kept). The
// parts are cut on their plain bytes and sent compressed when that saves,
// never longer.
func TestNodeCostBoundsOps(t *testing.T) {
	s := &Store{k: keys{root: "/p/"}}
	rng := rand.New(rand.NewPCG(1, 2))
	packedParts := 0
	defer func() {
		if packedParts == 0 {
			t.Error("no part was stored compressed")
		}
	}()
	for trial := 0; trial < 300; trial++ {
		idx := &nodeIndex{where: map[string]string{}, live: map[string]int{}}
		for i := 0; i < 30; i++ { // 30 nodes in 10 blocks of 3
			b := s.k.nblk("r", uint64(i/3+1), 0)
			idx.where[fmt.Sprintf("n%02d", i)] = b
			idx.live[b]++
		}
		idx.orphans = []string{s.k.nblk("r", 0, 0)}
		s.nidx = map[string]*nodeIndex{"r": idx}
		tx := &txn{after: map[string]*runHead{"r": {seq: 40}}, index: map[string]int{}, heads: map[string]bool{},
			recs: map[string]bool{}, snaps: map[string]map[string]bool{}, entries: map[string][][]byte{}, eBytes: map[string]int{}}
		firstEntry := rng.IntN(20)
		for i := 0; i < 1+rng.IntN(40); i++ {
			st := &staged{run: "r", head: *tx.after["r"]}
			for j := 0; j < 1+rng.IntN(2); j++ {
				size := rng.IntN(200)
				if rng.IntN(10) == 0 {
					size = rng.IntN(120 << 10)
				}
				st.nodes = append(st.nodes, nodeWrite{id: fmt.Sprintf("n%02d", rng.IntN(40)), stored: []byte(strings.Repeat("r", size))})
			}
			if i >= firstEntry {
				st.head.seq++
				st.entries = [][]byte{[]byte("{}")}
			}
			s.runNodes(tx, "r")
			tx.add(st)
		}
		rn := tx.nodes["r"]
		ops := tx.appendNodeOps(s.k, nil)
		bytes, dels, packed := 0, map[string]bool{}, 0
		for _, o := range ops {
			switch {
			case o.IsPut():
				bytes += len(o.KeyBytes()) + len(o.ValueBytes()) + opCost
				if len(rn.parts) > 0 && strings.Contains(string(o.KeyBytes()), "/nblk/") {
					// The cut is on the plain part; what is sent is
					// never longer.
					plain, err := openNodeBlock(o.ValueBytes())
					if err != nil || len(plain) < len(o.ValueBytes()) {
						t.Fatalf("trial %d: a part of %d bytes: %d plain, %v", trial, len(o.ValueBytes()), len(plain), err)
					}
					if n := blockRecords(t, o.ValueBytes()); n > 1 && len(plain) > ChunkSize {
						t.Fatalf("trial %d: a part of %d bytes plain holds %d records", trial, len(plain), n)
					}
					if o.ValueBytes()[0] == nodeZBlockMagic {
						packed++
					}
				}
			case o.IsDelete():
				bytes += len(o.KeyBytes()) + opCost
				dels[string(o.KeyBytes())] = true
			}
		}
		packedParts += packed
		wantOps, wantBytes := rn.cost(rn.sums, len(tx.entries["r"]) > 0)
		if len(ops) > tx.nodeOps || tx.nodeOps != wantOps || bytes > wantBytes {
			t.Fatalf("trial %d: %d operations and %d bytes, counted %d (%d) and %d", trial, len(ops), bytes, tx.nodeOps, wantOps, wantBytes)
		}
		// Deleted: the orphan, and each block whose every current record
		// the transaction rewrites.
		for b, live := range idx.live {
			rewritten := 0
			for node, in := range idx.where {
				if _, ok := rn.recs[node]; ok && in == b {
					rewritten++
				}
			}
			if dels[b] != (rewritten == live) {
				t.Fatalf("trial %d: block %s deleted %v with %d of its %d records rewritten", trial, b, dels[b], rewritten, live)
			}
		}
		if !dels[idx.orphans[0]] {
			t.Fatalf("trial %d: the orphan block is not deleted", trial)
		}
	}
}

// blockRecords counts the records of a node block.
func blockRecords(t *testing.T, v []byte) int {
	n := 0
	if err := splitNodeBlock(v, func(string, []byte) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}
