package etcdstate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// op is one write of a transaction: a put, or a delete of a key.
type op struct {
	key string
	val []byte
	del bool
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
}

// staged is what one change adds to a transaction.
type staged struct {
	run    string
	head   runHead // the run's head after the change
	ops    []op
	rec    bool
	snap   string // hash of the new snapshot ("": none)
	chunks []op
}

// opCost is what etcd adds to a key and value in a request, roughly.
const opCost = 32

// build puts as many of items as the limits allow (at least one) into a
// transaction over heads, and returns it with how many it took.
func (s *Store) build(items []item, heads map[string]*runHead) (*txn, int, error) {
	t := &txn{base: heads, after: make(map[string]*runHead, len(heads)), index: map[string]int{},
		heads: map[string]bool{}, recs: map[string]bool{}, snaps: map[string]map[string]bool{}}
	for id, h := range heads {
		t.after[id] = h
	}
	for i, it := range items {
		st, err := s.stage(t, it.p)
		if err != nil {
			return nil, 0, err
		}
		if i > 0 && t.exceeds(st, s.opts.MaxTxnOps, s.opts.MaxTxnBytes) {
			return t, i, nil
		}
		t.add(st)
	}
	return t, len(items), nil
}

// stage computes the writes of one change after what t holds already.
func (s *Store) stage(t *txn, p *state.Prepared) (*staged, error) {
	id := p.RunID()
	st := &staged{run: id, head: *t.after[id]}
	h := &st.head
	if rm := p.RemoveNode(); rm != "" {
		st.ops = append(st.ops, op{key: s.k.node(id, rm), del: true})
	}
	if nid, stored := p.Node(); nid != "" {
		st.ops = append(st.ops, op{key: s.k.node(id, nid), val: stored})
	}
	if snap := p.Snapshot(); snap != nil {
		st.snap = state.GraphHash(snap)
		for i := 0; i*ChunkSize < len(snap); i++ {
			end := min((i+1)*ChunkSize, len(snap))
			st.chunks = append(st.chunks, op{key: s.k.chunk(id, st.snap, i), val: snap[i*ChunkSize : end]})
		}
	}
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
	}
	for _, e := range p.Entries() {
		stored, hash, err := state.SealEntry(e, h.seq+1, h.hash)
		if err != nil {
			return nil, fmt.Errorf("encode journal entry %d of run %q: %w", h.seq+1, id, err)
		}
		h.seq, h.hash = h.seq+1, hash
		st.ops = append(st.ops, op{key: s.k.entry(id, h.seq), val: stored})
	}
	return st, nil
}

// exceeds reports whether adding st would take t over the limits.
func (t *txn) exceeds(st *staged, maxOps, maxBytes int) bool {
	ops, bytes := len(t.ops), t.bytes
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
	return ops > maxOps || bytes > maxBytes
}

// add takes st into t.
func (t *txn) add(st *staged) {
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
	ops := make([]clientv3.Op, 0, len(t.ops)+len(t.heads)+len(t.recs)+len(t.snaps))
	for _, o := range t.ops {
		if o.del {
			ops = append(ops, clientv3.OpDelete(o.key))
		} else {
			ops = append(ops, clientv3.OpPut(o.key, string(o.val)))
		}
	}
	for _, id := range t.touched {
		h := t.after[id]
		if t.heads[id] {
			ops = append(ops, clientv3.OpPut(k.head(id), string(state.EncodeHead(h.seq, h.hash))))
		}
		if t.recs[id] {
			b, err := json.Marshal(h.run)
			if err != nil {
				return nil, nil, fmt.Errorf("encode run %q: %w", id, err)
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

// send writes t: its snapshot chunks, then the transaction itself. It
// returns new heads to build on when another writer moved a head of t's
// runs, nil once t is committed.
func (s *Store) send(ctxs []context.Context, t *txn) (map[string]*runHead, error) {
	if err := s.putChunks(ctxs, t.chunks); err != nil {
		return nil, err
	}
	cmps, ops, err := t.request(s.k)
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
// last journal entry of some run is stored, with the hash t gave it.
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
		_, _, hash, cerr := state.CheckEntry(got)
		return cerr == nil && hash == want.hash, nil
	}
	return false, nil
}

// putChunks writes keys that no reader looks at yet (snapshot chunks, the
// node records of a run being created) in transactions within the limits:
// writing one again is harmless, and nothing reads them before a run
// record names them.
func (s *Store) putChunks(ctxs []context.Context, chunks []op) error {
	for len(chunks) > 0 {
		n, bytes := 0, 0
		for n < len(chunks) && n < s.opts.MaxTxnOps && (n == 0 || bytes+len(chunks[n].val)+len(chunks[n].key)+opCost <= s.opts.MaxTxnBytes) {
			bytes += len(chunks[n].val) + len(chunks[n].key) + opCost
			n++
		}
		ops := make([]clientv3.Op, n)
		for i, c := range chunks[:n] {
			ops[i] = clientv3.OpPut(c.key, string(c.val))
		}
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
