package etcdstate

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatchOperators tells of the changes of the operators made after
// revision rev (OperatorsAt's): the channel it returns receives a value
// when the operators' keys change — an operator added, given a new token,
// its role changed or revoked, through reprise or with an etcd client
// directly (the watch covers ROOT/operators/ and the guard
// ROOT/operators-rev) — and when etcd compacted the revisions the watch
// had to start from, so that a change may have been missed. Changes in a
// row may come as one value: read the operators again (OperatorsAt) at
// each. It is one etcd watch, started again where it stopped when it
// breaks (the member it used lost its leader or went away); the channel
// is closed once ctx is done.
func (s *Store) WatchOperators(ctx context.Context, rev int64) <-chan struct{} {
	ch := make(chan struct{}, 1)
	changed := func() {
		select {
		case ch <- struct{}{}:
		default: // one is waiting already: the reader reads them all
		}
	}
	go func() {
		defer close(ch)
		next := rev + 1
		for ctx.Err() == nil {
			// WithRequireLeader: a member cut off from its cluster ends
			// the watch, which then starts again on another.
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for resp := range s.cli.Watch(wctx, s.k.root+"operators", clientv3.WithPrefix(), clientv3.WithRev(next)) {
				if resp.CompactRevision > 0 {
					// The revisions from next were compacted: what
					// changed there is gone; from the compaction on, the
					// next watch sees it.
					next = resp.CompactRevision
					changed()
					break
				}
				if resp.Err() != nil {
					break
				}
				for _, ev := range resp.Events {
					next = ev.Kv.ModRevision + 1
				}
				if len(resp.Events) > 0 {
					changed()
				}
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond): // not a tight loop when etcd is away
			}
		}
	}()
	return ch
}
