package etcdstate

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// Verify checks a run against its journal, at the levels of
// state.Store.Verify (chain, records, snapshot, run), reading everything as of
// one revision.
func (s *Store) Verify(runID string) (state.VerifyReport, error) {
	var rep state.VerifyReport
	err := s.read(func(ctx context.Context) error {
		run, resp, err := s.withRun(ctx, runID)
		if err != nil {
			return err
		}
		rep, err = state.VerifyRun(run, newRunAt(ctx, s, run, resp))
		return err
	})
	return rep, err
}

// runAt reads one run's data as of revision rev (state.RunData).
type runAt struct {
	s      *Store
	ctx    context.Context
	run    state.Run
	record []byte // the run record as stored
	rev    int64
}

// newRunAt reads run's data as of the revision of resp, the answer of
// withRun (whose first response holds the run record).
func newRunAt(ctx context.Context, s *Store, run state.Run, resp *clientv3.TxnResponse) *runAt {
	r := &runAt{s: s, ctx: ctx, run: run, rev: resp.Header.Revision}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		r.record = kvs[0].Value
	}
	return r
}

func (r *runAt) RunRecord() ([]byte, error) { return r.record, nil }

func (r *runAt) Journal(fn func(key []byte, seq uint64, stored []byte) error) error {
	prefix := r.s.k.journal(r.run.ID)
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		resp, err := r.s.cli.Get(r.ctx, from, clientv3.WithRange(end), clientv3.WithLimit(journalPage), clientv3.WithRev(r.rev))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			seq, _ := r.s.seqOf(r.run.ID, kv.Key)
			v, err := openBlock(kv.Value)
			n := uint64(0)
			if err == nil {
				n = uint64(blockLen(v))
			}
			if n == 0 {
				// A damaged block, plain or compressed: the chain check
				// says where.
				if err := fn(kv.Key, seq, kv.Value); err != nil {
					return err
				}
				continue
			} else if seq >= n {
				seq -= n // the entries' numbers, from the last one's
			}
			if err := splitBlock(v, func(stored []byte) error {
				seq++
				return fn(kv.Key, seq, stored)
			}); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func (r *runAt) Head() ([]byte, error) {
	resp, err := r.s.cli.Get(r.ctx, r.s.k.head(r.run.ID), clientv3.WithRev(r.rev))
	if err != nil || len(resp.Kvs) == 0 {
		return nil, err
	}
	return resp.Kvs[0].Value, nil
}

func (r *runAt) Records(fn func(id string, stored []byte) error) error {
	roster, err := r.s.cli.Get(r.ctx, r.s.k.rosters(r.run.ID), clientv3.WithPrefix(), clientv3.WithRev(r.rev))
	if err != nil {
		return err
	}
	ids, err := r.s.rosterIDs(roster.Kvs)
	if err != nil {
		return err
	}
	src, err := r.s.nodeSources(r.ctx, r.run.ID, ids, r.rev)
	if err != nil {
		return err
	}
	return r.s.eachRecord(src, func(id string, stored, _ []byte) error {
		if stored == nil {
			if stored, err = pendingRecord(id); err != nil {
				return fmt.Errorf("roster of pending nodes: %w", err)
			}
		}
		return fn(id, stored)
	})
}

func (r *runAt) Snapshot() ([]byte, error) { return r.s.snapshotAt(r.ctx, r.run, r.rev) }
