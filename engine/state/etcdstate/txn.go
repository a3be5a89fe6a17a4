package etcdstate

import (
	"context"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// op is one write of a transaction: a put.
type op struct {
	key string
	val []byte
}

// txn is one transaction being built from a batch's changes.
type txn struct {
	base    map[string]*runHead // the heads it was built on
	after   map[string]*runHead // the heads once it is committed (every run of base)
	touched []string            // runs it changes, in order
	ops     []op
	index   map[string]int // key → position in ops (a key is written once)
	bytes   int
	heads   map[string]bool            // runs whose journal head moves
	recs    map[string]bool            // runs whose record is rewritten
	snaps   map[string]map[string]bool // run → snapshot hashes current during the transaction
	chunks  []op                       // snapshot chunks, written before the transaction
	entries map[string][][]byte        // run → the journal entries it appends (one key: block.go)
	eBytes  map[string]int             // run → their bytes
	nodes   map[string]*runNodes       // run → the node records it writes (nodetxn.go)
	nodeOps int                        // their operations
	// extras are the callers' own writes (ApplyWith), after the
	// writer's; extraOps counts their operations.
	extras   []*Extra
	extraOps int
	// rev and resps are the committed transaction's revision and
	// responses (nil: its answer was lost, the commit recognised after).
	rev   int64
	resps []*etcdserverpb.ResponseOp
}

// staged is what one change adds to a transaction.
type staged struct {
	run     string
	head    runHead // the run's head after the change
	ops     []op
	nodes   []nodeWrite // node records
	rec     bool
	snap    string // hash of the new snapshot ("": none)
	chunks  []op
	entries [][]byte // sealed journal entries
}

// opCost is what etcd adds to a key and value in a request, roughly.
const opCost = 32

// build puts as many of items as the limits allow (at least one) into a
// transaction over heads, and returns it with how many it took.
func (s *Store) build(items []item, heads map[string]*runHead) (*txn, int, error) {
	t := &txn{base: heads, after: make(map[string]*runHead, len(heads)), index: map[string]int{},
		heads: map[string]bool{}, recs: map[string]bool{}, snaps: map[string]map[string]bool{},
		entries: map[string][][]byte{}, eBytes: map[string]int{}}
	for id, h := range heads {
		t.after[id] = h
	}
	for i, it := range items {
		st, err := s.stage(t, it.p)
		if err != nil {
			return nil, 0, err
		}
		var x *Extra
		if it.last {
			x = it.req.extra
		}
		if i > 0 && t.exceeds(st, x, s.opts.MaxTxnOps, s.opts.MaxTxnBytes) {
			return t, i, nil
		}
		t.add(st)
		if x != nil {
			t.extras = append(t.extras, x)
			t.extraOps += len(x.Ops)
			t.bytes += x.Bytes
		}
	}
	return t, len(items), nil
}

// stage computes the writes of one change after what t holds already.
func (s *Store) stage(t *txn, p *state.Prepared) (*staged, error) {
	id := p.RunID()
	st := &staged{run: id, head: *t.after[id]}
	h := &st.head
	if rm := p.RemoveNode(); rm != "" {
		// Emptied, not deleted: the node may be on the roster (roster.go).
		st.nodes = append(st.nodes, nodeWrite{id: rm, stored: []byte{}})
	}
	if nid, stored := p.Node(); nid != "" {
		st.nodes = append(st.nodes, nodeWrite{id: nid, stored: stored})
	}
	if len(st.nodes) > 0 {
		s.runNodes(t, id) // in a block or under their own keys (nodetxn.go)
	}
	if snap := p.Snapshot(); snap != nil {
		st.snap = state.GraphHash(snap)
		st.chunks = s.snapChunks(id, st.snap, snap)
	}
	var runStored []byte
	if r := p.Run(); r != nil || st.snap != "" {
		var run state.Run
		if r != nil {
			run = *r
		} else {
			run = *h.run
		}
		run.GraphHash = h.run.GraphHash
		if st.snap != "" {
			run.GraphHash = st.snap
		}
		h.run, st.rec = &run, true
		var err error
		if runStored, err = state.EncodeRun(&run); err != nil {
			return nil, err
		}
	}
	for _, e := range p.Entries(runStored) {
		stored, hash, err := state.SealEntry(e, h.seq+1, h.hash)
		if err != nil {
			return nil, fmt.Errorf("encode journal entry %d of run %q: %w", h.seq+1, id, err)
		}
		h.seq, h.hash = h.seq+1, hash
		st.entries = append(st.entries, stored)
	}
	return st, nil
}

// exceeds reports whether adding st (with extra writes x, nil for none)
// would take t over the limits.
func (t *txn) exceeds(st *staged, x *Extra, maxOps, maxBytes int) bool {
	ops, bytes, extraOps := len(t.ops)+t.nodeOps, t.bytes, t.extraOps
	nodeOps, nodeBytes := t.nodeCost(st)
	ops, bytes = ops+nodeOps, bytes+nodeBytes
	if x != nil {
		bytes += x.Bytes
		extraOps += len(x.Ops)
	}
	for _, o := range st.ops {
		if _, ok := t.index[o.key]; !ok {
			ops++
		}
		bytes += len(o.key) + len(o.val) + opCost
	}
	heads, recs := len(t.heads), len(t.recs)
	if !t.heads[st.run] && st.head.seq != t.after[st.run].seq {
		heads++
	}
	if len(st.entries) > 0 {
		if len(t.entries[st.run]) == 0 {
			ops++ // the run's journal key
		}
		bytes += t.entryCost(st)
	}
	if st.rec && !t.recs[st.run] {
		recs++
	}
	snaps := len(t.snaps)
	if st.snap != "" && t.snaps[st.run] == nil {
		snaps++
	}
	// Head and record puts, deletes of replaced snapshots, and their bytes.
	ops += heads + recs + 2*snaps
	bytes += heads*(64+opCost) + recs*(4096+opCost)
	runs := len(t.touched)
	if !slices.Contains(t.touched, st.run) {
		runs++
	}
	return ops > capacity(maxOps, 2*runs, extraOps) || bytes > maxBytes
}

// capacity is how many writes one transaction with cmps comparisons and
// extra top-level operations (Extra) can hold when etcd allows maxOps
// operations per level (--max-txn-ops): the writes are spread over k
// nested transactions (nest), each allowed what its parent's level leaves
// of the limit, maxOps - max(k+extra, cmps). With the default 128, one
// transaction holds 4,096 writes (64 × 64) instead of 128, so that a batch
// of a few hundred changes is one round trip, not five.
func capacity(maxOps, cmps, extra int) int {
	best := 0
	if cmps <= maxOps && extra < maxOps {
		best = maxOps - extra
	}
	for k := 1; k+extra < maxOps; k++ {
		best = max(best, k*(maxOps-max(k+extra, cmps)))
	}
	return best
}

// nest returns ops as they go into a transaction with cmps comparisons
// and extra other top-level operations: as they are when one level holds
// them, else spread evenly over as few nested transactions (without
// comparisons, so each applies) as capacity allows. etcd applies a
// transaction and everything nested in it at one revision, atomically, as
// if flat.
func nest(ops []clientv3.Op, cmps, extra, maxOps int) []clientv3.Op {
	if len(ops)+extra <= maxOps && cmps <= maxOps {
		return ops
	}
	k := 1
	for k+extra < maxOps && k*(maxOps-max(k+extra, cmps)) < len(ops) {
		k++
	}
	size := (len(ops) + k - 1) / k
	out := make([]clientv3.Op, 0, k)
	for i := 0; i < len(ops); i += size {
		out = append(out, clientv3.OpTxn(nil, ops[i:min(i+size, len(ops))], nil))
	}
	return out
}

// entryKeyCost is what a journal key costs in a request, roughly.
const entryKeyCost = 128 + opCost

// entryCost is how many bytes st's journal entries add to t's request, at
// most: the plain block's size, which the value sent, compressed or not,
// never exceeds (journalValue).
func (t *txn) entryCost(st *staged) int {
	had, hadBytes := len(t.entries[st.run]), t.eBytes[st.run]
	n := hadBytes
	for _, e := range st.entries {
		n += len(e)
	}
	cost := blockSize(had+len(st.entries), n)
	if had == 0 {
		return cost + entryKeyCost
	}
	return cost - blockSize(had, hadBytes)
}

// add takes st into t.
func (t *txn) add(st *staged) {
	t.addNodes(st)
	if !slices.Contains(t.touched, st.run) {
		t.touched = append(t.touched, st.run)
	}
	for _, o := range st.ops {
		if i, ok := t.index[o.key]; ok {
			t.bytes += len(o.val) - len(t.ops[i].val)
			t.ops[i] = o // the last write of a key wins, as in sequence
			continue
		}
		t.index[o.key] = len(t.ops)
		t.ops = append(t.ops, o)
		t.bytes += len(o.key) + len(o.val) + opCost
	}
	if st.head.seq != t.after[st.run].seq {
		t.heads[st.run] = true
	}
	if st.rec {
		t.recs[st.run] = true
	}
	if len(st.entries) > 0 {
		t.bytes += t.entryCost(st)
		for _, e := range st.entries {
			t.eBytes[st.run] += len(e)
		}
		t.entries[st.run] = append(t.entries[st.run], st.entries...)
	}
	if st.snap != "" {
		if t.snaps[st.run] == nil {
			t.snaps[st.run] = map[string]bool{t.after[st.run].run.GraphHash: true}
		}
		t.snaps[st.run][st.snap] = true
		t.chunks = append(t.chunks, st.chunks...)
	}
	h := st.head
	t.after[st.run] = &h
}

// request returns the transaction's guard and writes.
func (t *txn) request(k keys) ([]clientv3.Cmp, []clientv3.Op, error) {
	var cmps []clientv3.Cmp
	for _, id := range t.touched {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k.head(id)), "=", t.base[id].modRev))
		if t.recs[id] {
			// The record is rewritten from what the writer knew of it.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k.run(id)), "=", t.base[id].recRev))
		}
	}
	ops := make([]clientv3.Op, 0, len(t.ops)+t.nodeOps+len(t.heads)+len(t.recs)+len(t.snaps))
	for _, o := range t.ops {
		ops = append(ops, clientv3.OpPut(o.key, string(o.val)))
	}
	// The journal blocks are packed on another goroutine while the node
	// blocks are cut and packed here: a level's two are of a size, and
	// the transaction waits for both.
	journals := make([][]byte, len(t.touched))
	packed := make(chan struct{})
	go func() {
		defer close(packed)
		for i, id := range t.touched {
			if es := t.entries[id]; len(es) > 0 {
				journals[i] = journalValue(es, t.eBytes[id])
			}
		}
	}()
	ops = t.appendNodeOps(k, ops)
	<-packed
	for i, id := range t.touched {
		h := t.after[id]
		if journals[i] != nil {
			ops = append(ops, clientv3.OpPut(k.entry(id, h.seq), string(journals[i])))
		}
		if t.heads[id] {
			ops = append(ops, clientv3.OpPut(k.head(id), string(state.EncodeHead(h.seq, h.hash))))
		}
		if t.recs[id] {
			b, err := state.EncodeRun(h.run)
			if err != nil {
				return nil, nil, err
			}
			ops = append(ops, clientv3.OpPut(k.run(id), string(b)))
		}
		for hash := range t.snaps[id] {
			if hash != h.run.GraphHash {
				ops = append(ops, clientv3.OpDelete(k.snap(id, hash), clientv3.WithPrefix()))
			}
		}
	}
	return cmps, ops, nil
}

// request returns the transaction's guard and writes, nested as the
// limits require (nest).
func (s *Store) request(t *txn) ([]clientv3.Cmp, []clientv3.Op, error) {
	cmps, ops, err := t.request(s.k)
	if err != nil {
		return nil, nil, err
	}
	ops = nest(ops, len(cmps), t.extraOps, s.opts.MaxTxnOps)
	for _, x := range t.extras {
		if x.Ready != nil {
			<-x.Ready
		}
		ops = append(ops, x.Ops...)
	}
	return cmps, ops, nil
}

// send writes t: its snapshot chunks, then the transaction itself. It
// returns new heads to build on when another writer moved a head of t's
// runs, nil once t is committed.
func (s *Store) send(ctxs []context.Context, t *txn) (map[string]*runHead, error) {
	if err := s.putChunks(ctxs, t.chunks); err != nil {
		return nil, err
	}
	cmps, ops, err := s.request(t)
	if err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		if err := s.giveUp(); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.attemptTimeout())
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		cancel()
		s.saw(err)
		if err == nil && resp.Succeeded {
			t.rev, t.resps = resp.Header.Revision, resp.Responses
			if n > 1 && s.opts.OnWait != nil {
				s.opts.OnWait(nil)
			}
			for _, id := range t.touched {
				h := *t.after[id]
				if t.heads[id] {
					h.modRev = resp.Header.Revision
				}
				if t.recs[id] {
					h.recRev = resp.Header.Revision
				}
				t.after[id] = &h
			}
			return nil, nil
		}
		if err != nil && !transient(err) {
			return nil, err
		}
		// The answer was lost, or a guard failed: see where the heads are.
		cur, lerr := s.loadHeads(ctxs, t.touched)
		if lerr != nil {
			return nil, lerr
		}
		if err != nil {
			done, cerr := s.landed(ctxs, t, cur)
			if cerr != nil {
				return nil, cerr
			}
			if done {
				for _, id := range t.touched {
					t.after[id] = cur[id]
					if t.heads[id] {
						t.rev = cur[id].modRev
					}
				}
				return nil, nil
			}
		}
		moved := false
		for _, id := range t.touched {
			if cur[id].modRev != t.base[id].modRev || cur[id].recRev != t.base[id].recRev {
				moved = true
			}
		}
		if moved {
			heads := make(map[string]*runHead, len(t.base))
			for id, h := range t.base {
				heads[id] = h
			}
			for _, id := range t.touched {
				heads[id] = cur[id]
			}
			return heads, nil
		}
		if err == nil {
			// A guard failed on a head that did not move: the run record
			// or head vanished. Nothing to wait for.
			return nil, fmt.Errorf("journal heads of %v changed under the transaction and back", t.touched)
		}
		if berr := s.backoff(n, err, ctxs); berr != nil {
			return nil, berr
		}
	}
}

// landed reports whether t was committed although its answer was lost: its
// last journal entry of some run is stored (last in its key, block.go),
// with the hash t gave it.
func (s *Store) landed(ctxs []context.Context, t *txn, cur map[string]*runHead) (bool, error) {
	for _, id := range t.touched {
		if !t.heads[id] {
			continue
		}
		want := t.after[id]
		if cur[id].seq < want.seq {
			return false, nil
		}
		var got []byte
		err := s.retry(context.Background(), ctxs, func(ctx context.Context) error {
			resp, err := s.cli.Get(ctx, s.k.entry(id, want.seq))
			if err == nil && len(resp.Kvs) == 1 {
				got = resp.Kvs[0].Value
			}
			return err
		})
		if err != nil {
			return false, err
		}
		var last []byte
		if splitBlock(got, func(e []byte) error { last = e; return nil }) != nil {
			return false, nil
		}
		_, _, hash, cerr := state.CheckEntry(last)
		return cerr == nil && hash == want.hash, nil
	}
	return false, nil
}

// putChunks writes keys that no reader looks at yet (snapshot chunks, the
// node records of a run being created) in transactions within the limits:
// writing one again is harmless, and nothing reads them before a run
// record names them.
func (s *Store) putChunks(ctxs []context.Context, chunks []op) error {
	most := capacity(s.opts.MaxTxnOps, 0, 0)
	for len(chunks) > 0 {
		n, bytes := 0, 0
		for n < len(chunks) && n < most && (n == 0 || bytes+len(chunks[n].val)+len(chunks[n].key)+opCost <= s.opts.MaxTxnBytes) {
			bytes += len(chunks[n].val) + len(chunks[n].key) + opCost
			n++
		}
		ops := make([]clientv3.Op, n)
		for i, c := range chunks[:n] {
			ops[i] = clientv3.OpPut(c.key, string(c.val))
		}
		ops = nest(ops, 0, 0, s.opts.MaxTxnOps)
		err := s.retry(context.Background(), ctxs, func(ctx context.Context) error {
			_, err := s.cli.Txn(ctx).Then(ops...).Commit()
			return err
		})
		if err != nil {
			return fmt.Errorf("write %d keys under %s: %w", n, chunks[0].key, err)
		}
		chunks = chunks[n:]
	}
	return nil
}
