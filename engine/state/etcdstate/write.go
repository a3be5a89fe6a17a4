package etcdstate

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// request is one Apply call waiting for the writer.
type request struct {
	ctx     context.Context
	changes []*state.Prepared
	extra   *Extra // committed with the last change (ApplyWith)
	err     error
	done    chan struct{}
}

// Apply applies changes, each with its journal entry in the same etcd
// transaction, and returns once they are durable. Concurrent calls are
// group-committed; while etcd cannot commit, Apply waits (doc.go). A call
// whose changes name an unknown run fails alone with state.ErrRunNotFound;
// a malformed change fails with state.ErrInvalidChange before anything is
// queued. If ctx is done first, Apply returns ctx.Err(), but the changes
// may still be committed.
func (s *Store) Apply(ctx context.Context, changes ...state.Change) error {
	if len(changes) == 0 {
		if s.opts.ReadOnly {
			return state.ErrReadOnly
		}
		return ctx.Err()
	}
	return s.apply(ctx, nil, changes)
}

// apply queues changes (with extra, nil for none) and waits for them.
func (s *Store) apply(ctx context.Context, extra *Extra, changes []state.Change) (err error) {
	queued := false
	defer func() {
		if err != nil && !queued {
			extra.done(0, nil, err) // once queued, the writer calls it
		}
	}()
	if s.opts.ReadOnly {
		return state.ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &request{ctx: ctx, changes: make([]*state.Prepared, 0, len(changes)), extra: extra, done: make(chan struct{})}
	for i := range changes {
		if err := checkRunID(changes[i].RunID); err != nil {
			return err
		}
		p, err := state.Prepare(changes[i])
		if err != nil {
			return err
		}
		req.changes = append(req.changes, p)
	}
	if !s.queue.Push(req) {
		return state.ErrClosed
	}
	queued = true
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runHead is what the writer knows of a run: its journal head, the head
// key's ModRevision (what a transaction compares), its record.
type runHead struct {
	seq    uint64
	hash   string
	modRev int64      // of the head key
	recRev int64      // of the run record's key
	run    *state.Run // nil: no such run
}

// item is one change of a request, in the batch's order.
type item struct {
	req  *request
	p    *state.Prepared
	last bool // the request's last change
}

// commit writes a batch in as few transactions as the limits allow and
// wakes its callers.
func (s *Store) commit(batch []*request) {
	ctxs := make([]context.Context, len(batch))
	var ids []string
	seen := map[string]bool{}
	for i, req := range batch {
		ctxs[i] = req.ctx
		for _, p := range req.changes {
			if !seen[p.RunID()] {
				seen[p.RunID()] = true
				ids = append(ids, p.RunID())
			}
		}
	}
	heads, err := s.knownHeads(ctxs, ids)
	if err != nil {
		s.finish(batch, fmt.Errorf("read journal heads on %s: %w", s.url, err))
		return
	}
	var items []item
	for _, req := range batch {
		for _, p := range req.changes {
			if heads[p.RunID()].run == nil {
				req.err = fmt.Errorf("run %q: %w", p.RunID(), state.ErrRunNotFound)
				break
			}
		}
		if req.err != nil {
			continue
		}
		for i, p := range req.changes {
			items = append(items, item{req: req, p: p, last: i == len(req.changes)-1})
		}
	}
	for pos := 0; pos < len(items); {
		var t *txn
		var n int
		err := s.loadIndexes(ctxs, heads)
		if err == nil {
			t, n, err = s.build(items[pos:], heads)
		}
		if err == nil {
			var conflict map[string]*runHead
			conflict, err = s.send(ctxs, t)
			if err == nil && conflict != nil {
				heads = conflict // another writer moved a head: seal again after it
				s.remember(heads, t.touched)
				s.dropIndexes(t.touched) // and read where its node records are
				continue
			}
		}
		if err != nil {
			s.forget(t)
			err = fmt.Errorf("commit %d changes to %s: %w", len(items)-pos, s.url, err)
			for _, it := range items[pos:] {
				if it.req.err == nil {
					it.req.err = err
				}
			}
			break
		}
		heads = t.after
		s.remember(heads, t.touched)
		s.nodesCommitted(t)
		t.committed()
		s.stats.commits.Add(1)
		s.stats.changes.Add(uint64(n))
		for _, it := range items[pos : pos+n] {
			if it.last {
				s.stats.applies.Add(1)
			}
		}
		pos += n
	}
	s.finish(batch, nil)
}

// finish wakes every caller of batch, giving err to those without one.
func (s *Store) finish(batch []*request, err error) {
	for _, req := range batch {
		if req.err == nil {
			req.err = err
		}
		if req.err != nil {
			s.stats.failed.Add(1)
			req.extra.done(0, nil, req.err)
		}
		close(req.done)
	}
}

// knownHeads returns the heads of runs ids: those the writer knows from
// its last commits, the others read from etcd. A head known here may be
// stale (another process wrote since): the transaction's guard finds it
// out, and the writer reads it again.
func (s *Store) knownHeads(ctxs []context.Context, ids []string) (map[string]*runHead, error) {
	heads := make(map[string]*runHead, len(ids))
	var missing []string
	for _, id := range ids {
		if h, ok := s.heads[id]; ok {
			heads[id] = h
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		loaded, err := s.loadHeads(ctxs, missing)
		if err != nil {
			return nil, err
		}
		for id, h := range loaded {
			heads[id] = h
		}
		s.remember(loaded, missing)
	}
	return heads, nil
}

// remember keeps the heads of ids for the next batches (runs that exist).
func (s *Store) remember(heads map[string]*runHead, ids []string) {
	if s.heads == nil {
		s.heads = map[string]*runHead{}
	}
	for _, id := range ids {
		if h := heads[id]; h != nil && h.run != nil {
			s.heads[id] = h
		}
	}
}

// forget drops what the writer knows of t's runs after a failed commit.
func (s *Store) forget(t *txn) {
	if t == nil {
		s.heads = nil
		s.dropIndexes(nil)
		return
	}
	for _, id := range t.touched {
		delete(s.heads, id)
	}
	s.dropIndexes(t.touched)
}

// loadHeads reads the record and journal head of each run, in one
// linearizable transaction, retrying while etcd is unavailable.
func (s *Store) loadHeads(ctxs []context.Context, ids []string) (map[string]*runHead, error) {
	heads := make(map[string]*runHead, len(ids))
	err := s.retry(context.Background(), ctxs, func(ctx context.Context) error {
		ops := make([]clientv3.Op, 0, 2*len(ids))
		for _, id := range ids {
			ops = append(ops, clientv3.OpGet(s.k.run(id)), clientv3.OpGet(s.k.head(id)))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return err
		}
		for i, id := range ids {
			h := &runHead{}
			if kvs := resp.Responses[2*i].GetResponseRange().Kvs; len(kvs) == 1 {
				run, err := s.decodeRun(kvs[0].Key, kvs[0].Value)
				if err != nil {
					return err
				}
				h.run, h.recRev = &run, kvs[0].ModRevision
			}
			if kvs := resp.Responses[2*i+1].GetResponseRange().Kvs; len(kvs) == 1 {
				h.modRev = kvs[0].ModRevision
				if h.seq, h.hash, err = state.DecodeHead(kvs[0].Value); err != nil {
					return s.corrupt(string(kvs[0].Key), "journal head: %v", err)
				}
			}
			heads[id] = h
		}
		return nil
	})
	return heads, err
}

func (s *Store) decodeRun(key, v []byte) (state.Run, error) {
	var run state.Run
	if err := json.Unmarshal(v, &run); err != nil {
		return run, s.corrupt(string(key), "run record: %v", err)
	}
	return run, nil
}
