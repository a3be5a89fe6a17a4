package etcdstate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// read runs fn (linearizable reads) with retries for up to ReadTimeout.
func (s *Store) read(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReadTimeout)
	defer cancel()
	err := s.retry(ctx, []context.Context{ctx}, fn)
	if err != nil && (transient(err) || ctx.Err() != nil) {
		return fmt.Errorf("read %s: %w", s.url, err)
	}
	return err
}

// withRun reads the record of run id together with ops, in one
// transaction: ErrRunNotFound when there is no such run.
func (s *Store) withRun(ctx context.Context, id string, ops ...clientv3.Op) (state.Run, *clientv3.TxnResponse, error) {
	resp, err := s.cli.Txn(ctx).Then(append([]clientv3.Op{clientv3.OpGet(s.k.run(id))}, ops...)...).Commit()
	if err != nil {
		return state.Run{}, nil, err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return state.Run{}, nil, fmt.Errorf("run %q: %w", id, state.ErrRunNotFound)
	}
	run, err := s.decodeRun(kvs[0].Key, kvs[0].Value)
	return run, resp, err
}

// Run returns the record of run id, or state.ErrRunNotFound.
func (s *Store) Run(id string) (state.Run, error) {
	var run state.Run
	err := s.read(func(ctx context.Context) error {
		var err error
		run, _, err = s.withRun(ctx, id)
		return err
	})
	return run, err
}

// Runs returns every run, newest first.
func (s *Store) Runs() ([]state.Run, error) {
	var runs []state.Run
	err := s.read(func(ctx context.Context) error {
		resp, err := s.cli.Get(ctx, s.k.runs(), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		runs = runs[:0]
		for _, kv := range resp.Kvs {
			run, err := s.decodeRun(kv.Key, kv.Value)
			if err != nil {
				return err
			}
			runs = append(runs, run)
		}
		return nil
	})
	sort.SliceStable(runs, func(i, j int) bool {
		if !runs[i].Created.Equal(runs[j].Created) {
			return runs[i].Created.After(runs[j].Created)
		}
		return runs[i].ID > runs[j].ID
	})
	return runs, err
}

// LatestUnfinished returns the newest run that may be resumed, or
// state.ErrNoRun.
func (s *Store) LatestUnfinished() (state.Run, error) {
	runs, err := s.Runs()
	if err != nil {
		return state.Run{}, err
	}
	for _, r := range runs {
		if r.Unfinished() {
			return r, nil
		}
	}
	return state.Run{}, state.ErrNoRun
}

// Snapshot returns a run's graph snapshot: the chunks its record's graph
// hash names. It fails with state.ErrTampered when they do not add up to
// that hash.
func (s *Store) Snapshot(runID string) ([]byte, error) {
	var snap []byte
	err := s.read(func(ctx context.Context) error {
		run, resp, err := s.withRun(ctx, runID)
		if err != nil {
			return err
		}
		if snap, err = s.snapshotAt(ctx, run, resp.Header.Revision); err != nil {
			return err
		}
		if sum := state.GraphHash(snap); run.GraphHash != "" && sum != run.GraphHash {
			return fmt.Errorf("graph snapshot of run %q: its SHA-256 %.12s… is not the run's graph hash %.12s…: %w", runID, sum, run.GraphHash, state.ErrTampered)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// snapshotAt reads the chunks of run's snapshot as of revision rev, and
// decompresses them when they hold it compressed (snapzip.go).
func (s *Store) snapshotAt(ctx context.Context, run state.Run, rev int64) ([]byte, error) {
	resp, err := s.cli.Get(ctx, s.k.snap(run.ID, run.GraphHash), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, err
	}
	var snap []byte
	for i, kv := range resp.Kvs {
		if string(kv.Key) != s.k.chunk(run.ID, run.GraphHash, i) {
			return nil, s.corrupt(string(kv.Key), "snapshot chunk %d expected here", i)
		}
		snap = append(snap, kv.Value...)
	}
	return s.unpackSnap(run, len(resp.Kvs), snap)
}

// journalPage is how many entries Journal reads per request.
const journalPage = 1024

// Journal calls fn with each journal entry of a run whose Seq is above
// afterSeq, in order, as of the moment of the call, and stops at fn's first
// error. The first key read is the one holding entry afterSeq+1 (a key is
// named by its last entry, block.go). fn runs outside any request. A damaged entry gives
// *state.CorruptError naming its key, after fn was called with every entry
// before it.
func (s *Store) Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error {
	var rev int64
	end := clientv3.GetPrefixRangeEnd(s.k.journal(runID))
	for {
		var page []*mvccpb.KeyValue
		err := s.read(func(ctx context.Context) error {
			get := clientv3.OpGet(s.k.entry(runID, afterSeq+1), clientv3.WithRange(end), clientv3.WithLimit(journalPage))
			if rev == 0 {
				_, resp, err := s.withRun(ctx, runID, get)
				if err != nil {
					return err
				}
				rev = resp.Header.Revision
				page = resp.Responses[1].GetResponseRange().Kvs
				return nil
			}
			resp, err := s.cli.Get(ctx, s.k.entry(runID, afterSeq+1), clientv3.WithRange(end), clientv3.WithLimit(journalPage), clientv3.WithRev(rev))
			if err != nil {
				return err
			}
			page = resp.Kvs
			return nil
		})
		if err != nil {
			return err
		}
		for _, kv := range page {
			last, ok := s.seqOf(runID, kv.Key)
			v, err := openBlock(kv.Value)
			if err != nil {
				return s.corrupt(string(kv.Key), "journal of run %q: %v", runID, err)
			}
			n := uint64(blockLen(v))
			seq := last - n // before the key's first entry
			err = splitBlock(v, func(stored []byte) error {
				seq++
				if ok && n > 0 && seq <= afterSeq {
					return nil // read for an earlier entry of its block
				}
				e, err := state.OpenEntry(stored)
				if err != nil {
					return s.corrupt(string(kv.Key), "journal entry of run %q: %v", runID, err)
				}
				if err := fn(e); err != nil {
					return err
				}
				afterSeq = max(afterSeq+1, e.Seq)
				return nil
			})
			if errors.Is(err, errBadBlock) {
				return s.corrupt(string(kv.Key), "journal of run %q: %v", runID, err)
			}
			if err != nil {
				return err
			}
			if ok {
				afterSeq = max(afterSeq, last)
			}
		}
		if len(page) < journalPage {
			return nil
		}
	}
}

// seqOf returns the sequence number a journal key gives.
func (s *Store) seqOf(runID string, key []byte) (uint64, bool) {
	hexSeq, ok := strings.CutPrefix(string(key), s.k.journal(runID))
	if !ok || len(hexSeq) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hexSeq, 16, 64)
	return seq, err == nil
}

// Head returns the sequence number and hash of a run's last journal entry.
func (s *Store) Head(runID string) (seq uint64, hash string, err error) {
	err = s.read(func(ctx context.Context) error {
		_, resp, err := s.withRun(ctx, runID, clientv3.OpGet(s.k.head(runID)))
		if err != nil {
			return err
		}
		kvs := resp.Responses[1].GetResponseRange().Kvs
		if len(kvs) == 0 {
			seq, hash = 0, ""
			return nil
		}
		var derr error
		if seq, hash, derr = state.DecodeHead(kvs[0].Value); derr != nil {
			return s.corrupt(string(kvs[0].Key), "journal head: %v", derr)
		}
		return nil
	})
	return seq, hash, err
}
