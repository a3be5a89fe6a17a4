package etcdstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// staleClaim is how old the claim of a creation must be before another
// CreateRun of the same id takes it over (the first was cut short).
const staleClaim = 10 * time.Minute

// CreateRun stores a new run, its snapshot and node records, and journals
// its run-created entry, as state.Store.CreateRun does. It fails with
// state.ErrRunExists if the id is taken. When nothing is stored under the
// id and everything fits in one transaction (a 10,000-node run does), the
// run is written in one (createFresh). Otherwise it takes several: the id
// is claimed first (runs/creating/<run>, clearing what a creation cut
// short left), the records and snapshot chunks written next, and the run
// record, head and first entry last, in one transaction that makes the
// run visible whole. While
// etcd cannot commit, CreateRun waits until ctx is done.
func (s *Store) CreateRun(ctx context.Context, run state.Run, snapshot []byte, nodes []state.NodeRecord) error {
	if s.opts.ReadOnly {
		return state.ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRunID(run.ID); err != nil {
		return err
	}
	p, err := state.PrepareRun(run, snapshot, nodes)
	if err != nil {
		return err
	}
	id := p.Run.ID
	ctxs := []context.Context{ctx}
	bulk, err := s.splitNodes(id, p.Nodes)
	if err != nil {
		return fmt.Errorf("create run %q: %w", id, err)
	}
	bulk = append(bulk, s.snapChunks(id, p.Run.GraphHash, snapshot)...)
	stored, hash, err := state.SealEntry(p.Created, 1, "")
	if err != nil {
		return fmt.Errorf("create run %q: %w", id, err)
	}
	done, err := s.createFresh(ctx, id, bulk, p.Record, hash, stored)
	if err != nil {
		return fmt.Errorf("create run %q on %s: %w", id, s.url, err)
	}
	if done {
		s.stats.commits.Add(1)
		return nil
	}
	claimRev, err := s.claim(ctx, id)
	if err != nil {
		return err
	}
	if err := s.putChunks(ctxs, bulk); err != nil {
		return fmt.Errorf("create run %q: %w", id, err)
	}
	err = s.retry(ctx, ctxs, func(actx context.Context) error {
		resp, err := s.cli.Txn(actx).If(
			clientv3.Compare(clientv3.ModRevision(s.k.creating(id)), "=", claimRev),
			clientv3.Compare(clientv3.CreateRevision(s.k.run(id)), "=", 0),
		).Then(
			clientv3.OpPut(s.k.run(id), string(p.Record)),
			clientv3.OpPut(s.k.head(id), string(state.EncodeHead(1, hash))),
			clientv3.OpPut(s.k.entry(id, 1), string(stored)),
			clientv3.OpDelete(s.k.creating(id)),
		).Else(clientv3.OpGet(s.k.head(id))).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		// Committed by an attempt whose answer was lost?
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			if seq, h, derr := state.DecodeHead(kvs[0].Value); derr == nil && seq >= 1 && h == hash {
				return nil
			}
			return fmt.Errorf("create run %q: %w", id, state.ErrRunExists)
		}
		return fmt.Errorf("create run %q: its claim %s was taken over by another creation", id, s.k.creating(id))
	})
	if err != nil {
		return fmt.Errorf("create run %q on %s: %w", id, s.url, err)
	}
	s.stats.commits.Add(1)
	return nil
}

// createFresh creates the run in one transaction when nothing is stored
// under its id (no record, no claim, no key under any of its prefixes: no
// creation was cut short) and its records, snapshot and first entry fit in
// one transaction: a new run of 10,000 nodes then takes one round trip
// instead of three. done is false when it cannot (the caller takes the
// usual way: claim, chunks, record); an error is etcd's, once retry gives
// up.
func (s *Store) createFresh(ctx context.Context, id string, bulk []op, record []byte, hash string, first []byte) (done bool, err error) {
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(s.k.run(id)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(s.k.creating(id)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(s.k.head(id)), "=", 0),
	}
	// A comparison over a prefix holds when no key is there.
	for _, prefix := range []string{s.k.nodes(id), s.k.nblks(id), s.k.journal(id), s.k.snaps(id), s.k.rosters(id)} {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix())
	}
	ops := make([]clientv3.Op, 0, len(bulk)+3)
	bytes := 0
	for _, o := range bulk {
		ops = append(ops, clientv3.OpPut(o.key, string(o.val)))
		bytes += len(o.key) + len(o.val) + opCost
	}
	head := state.EncodeHead(1, hash)
	ops = append(ops,
		clientv3.OpPut(s.k.run(id), string(record)),
		clientv3.OpPut(s.k.head(id), string(head)),
		clientv3.OpPut(s.k.entry(id, 1), string(first)))
	bytes += len(record) + len(head) + len(first) + 3*(entryKeyCost)
	if len(ops) > capacity(s.opts.MaxTxnOps, len(cmps), 0) || bytes > s.opts.MaxTxnBytes {
		return false, nil
	}
	ops = nest(ops, len(cmps), 0, s.opts.MaxTxnOps)
	err = s.retry(ctx, []context.Context{ctx}, func(actx context.Context) error {
		resp, err := s.cli.Txn(actx).If(cmps...).Then(ops...).Else(clientv3.OpGet(s.k.head(id))).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			done = true
			return nil
		}
		// Committed by an attempt whose answer was lost? Else something
		// is there: the usual way sorts it out.
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			if seq, h, derr := state.DecodeHead(kvs[0].Value); derr == nil && seq >= 1 && h == hash {
				done = true
			}
		}
		return nil
	})
	return done, err
}

// claim takes runs/creating/<id> for a creation, clearing whatever a
// creation cut short left under the id, and returns its ModRevision.
func (s *Store) claim(ctx context.Context, id string) (int64, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	mine := time.Now().UTC().Format(time.RFC3339Nano) + " " + hex.EncodeToString(nonce[:])
	var rev int64
	takeOver := int64(0) // ModRevision of a stale claim to replace
	err := s.retry(ctx, []context.Context{ctx}, func(actx context.Context) error {
		clear := []clientv3.Op{
			clientv3.OpPut(s.k.creating(id), mine),
			clientv3.OpDelete(s.k.nodes(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.k.nblks(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.k.journal(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.k.snaps(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.k.rosters(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.k.head(id)),
		}
		claimCmp := clientv3.Compare(clientv3.CreateRevision(s.k.creating(id)), "=", 0)
		if takeOver != 0 {
			claimCmp = clientv3.Compare(clientv3.ModRevision(s.k.creating(id)), "=", takeOver)
		}
		resp, err := s.cli.Txn(actx).If(
			clientv3.Compare(clientv3.CreateRevision(s.k.run(id)), "=", 0), claimCmp,
		).Then(clear...).Else(clientv3.OpGet(s.k.run(id)), clientv3.OpGet(s.k.creating(id))).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			rev = resp.Header.Revision
			return nil
		}
		if len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
			return fmt.Errorf("create run %q: %w", id, state.ErrRunExists)
		}
		kvs := resp.Responses[1].GetResponseRange().Kvs
		if len(kvs) == 0 {
			takeOver = 0
			return errRetryNow
		}
		theirs := string(kvs[0].Value)
		if theirs == mine { // an attempt whose answer was lost
			rev = kvs[0].ModRevision
			return nil
		}
		since, _, _ := strings.Cut(theirs, " ")
		t, perr := time.Parse(time.RFC3339Nano, since)
		if perr == nil && time.Since(t) > staleClaim {
			takeOver = kvs[0].ModRevision
			return errRetryNow
		}
		return fmt.Errorf("create run %q: another process is creating it (claim %s since %s); if that creation was cut short, try again after %s", id, s.k.creating(id), since, staleClaim)
	})
	return rev, err
}

// errRetryNow asks retry for another attempt (a claim that changed).
var errRetryNow = errors.New("retry now")
