package etcdstate

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

var _ state.Copier = (*Store)(nil)

// ExportRun reads everything stored for a run as of one revision.
func (s *Store) ExportRun(runID string) (*state.RunCopy, error) {
	c := &state.RunCopy{}
	err := s.read(func(ctx context.Context) error {
		run, resp, err := s.withRun(ctx, runID)
		if err != nil {
			return err
		}
		r := newRunAt(ctx, s, run, resp)
		*c = state.RunCopy{Run: run, Record: r.record}
		if c.Snapshot, err = r.Snapshot(); err != nil {
			return err
		}
		if c.Head, err = r.Head(); err != nil {
			return err
		}
		if err := r.Records(func(id string, stored []byte) error {
			c.Nodes = append(c.Nodes, state.StoredNode{ID: id, Stored: stored})
			return nil
		}); err != nil {
			return err
		}
		return r.Journal(func(_ []byte, seq uint64, stored []byte) error {
			c.Entries = append(c.Entries, state.StoredEntry{Seq: seq, Stored: stored})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ImportRun stores a copied run, its bytes unchanged, as CreateRun stores
// a new one: the id claimed, the records, entries and snapshot chunks
// written, then the run record and head in the transaction that makes the
// run visible whole. It fails with state.ErrRunExists when the id is taken.
func (s *Store) ImportRun(ctx context.Context, c *state.RunCopy) error {
	if s.opts.ReadOnly {
		return state.ErrReadOnly
	}
	id := c.Run.ID
	if err := checkRunID(id); err != nil {
		return err
	}
	run := c.Run
	run.GraphHash = state.GraphHash(c.Snapshot) // the chunks are addressed by it
	if c.Run.GraphHash != "" && c.Run.GraphHash != run.GraphHash {
		return fmt.Errorf("copy run %q: its snapshot is not the one its record names: %w", id, state.ErrTampered)
	}
	var rb []byte
	var err error
	if c.Run.GraphHash != "" {
		rb, err = c.StoredRecord() // as stored: the journal holds a copy
	} else {
		rb, err = state.EncodeRun(&run)
	}
	if err != nil {
		return err
	}
	claimRev, err := s.claim(ctx, id)
	if err != nil {
		return err
	}
	bulk, err := s.splitNodes(id, c.Nodes)
	if err != nil {
		return fmt.Errorf("copy run %q: %w", id, err)
	}
	bulk = append(bulk, s.entryBlocks(id, c.Entries)...)
	bulk = append(bulk, s.snapChunks(id, run.GraphHash, c.Snapshot)...)
	ctxs := []context.Context{ctx}
	if err := s.putChunks(ctxs, bulk); err != nil {
		return fmt.Errorf("copy run %q: %w", id, err)
	}
	then := []clientv3.Op{clientv3.OpPut(s.k.run(id), string(rb)), clientv3.OpDelete(s.k.creating(id))}
	if len(c.Head) > 0 {
		then = append(then, clientv3.OpPut(s.k.head(id), string(c.Head)))
	}
	err = s.retry(ctx, ctxs, func(actx context.Context) error {
		resp, err := s.cli.Txn(actx).If(
			clientv3.Compare(clientv3.ModRevision(s.k.creating(id)), "=", claimRev),
			clientv3.Compare(clientv3.CreateRevision(s.k.run(id)), "=", 0),
		).Then(then...).Else(clientv3.OpGet(s.k.run(id))).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			if string(kvs[0].Value) == string(rb) {
				return nil // an attempt whose answer was lost
			}
			return fmt.Errorf("copy run %q: %w", id, state.ErrRunExists)
		}
		return fmt.Errorf("copy run %q: its claim %s was taken over", id, s.k.creating(id))
	})
	if err != nil {
		return fmt.Errorf("copy run %q to %s: %w", id, s.url, err)
	}
	return nil
}

// Entries per journal key of a copied run, at most.
const (
	copyBlockEntries = 64
	copyBlockBytes   = 64 << 10
)

// entryBlocks returns the journal keys of copied entries: runs of
// consecutive entries in blocks (block.go), a gap starting a new one.
func (s *Store) entryBlocks(id string, entries []state.StoredEntry) []op {
	var out []op
	var block [][]byte
	bytes := 0
	for i, e := range entries {
		block = append(block, e.Stored)
		bytes += len(e.Stored)
		next := i + 1
		if next == len(entries) || entries[next].Seq != e.Seq+1 || len(block) == copyBlockEntries || bytes >= copyBlockBytes {
			out = append(out, op{key: s.k.entry(id, e.Seq), val: journalValue(block, bytes)})
			block, bytes = nil, 0
		}
	}
	return out
}
