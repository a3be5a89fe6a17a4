package etcdstate

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// Extra is a caller's own etcd writes, committed in the transaction that
// writes the last change of an ApplyWith call: atomically with it, never
// before. The coordinator uses it to offer steps to agents in the commit
// that records them started (internal/cluster), so that a step is never
// offered before its start is durable, and the two cost one round trip.
type Extra struct {
	// Ops go at the transaction's top level after the writer's own: puts,
	// deletes, or nested transactions of a few operations each (the
	// writer reserves one of etcd's operations per level for each).
	Ops []clientv3.Op
	// Bytes is about how many bytes Ops write (counted against
	// Options.MaxTxnBytes), or a bound of it.
	Bytes int
	// Ready, when set, says the caller is still building Ops: their
	// number is final, their contents are not until Ready is closed. The
	// writer reads len(Ops) as it builds the transaction, and the
	// operations themselves only once Ready is closed, just before it
	// sends it: the caller's encoding runs beside the writer's own.
	Ready <-chan struct{}
	// Done is called once, from the writer's goroutine (it must not
	// block): with the transaction's revision and the responses of Ops,
	// in order, once it committed; with nil responses when it committed
	// but its answer was lost (the writer recognised it afterwards); or
	// with the error that kept the changes from being written.
	Done func(rev int64, resps []*etcdserverpb.ResponseOp, err error)
}

// ApplyWith is Apply, with extra (an *Extra) committed in the transaction
// of the last change. extra.Done is always called, once, even when Apply
// fails before anything is queued.
func (s *Store) ApplyWith(ctx context.Context, extra any, changes ...state.Change) error {
	x, ok := extra.(*Extra)
	if !ok || x == nil {
		return fmt.Errorf("%w: extra writes of type %T, want *etcdstate.Extra", state.ErrInvalidChange, extra)
	}
	if len(changes) == 0 {
		err := fmt.Errorf("%w: extra writes without a change to go with", state.ErrInvalidChange)
		x.done(0, nil, err)
		return err
	}
	return s.apply(ctx, x, changes)
}

// done calls Done, once (a nil x: nothing). Only one goroutine calls it:
// the caller's before the request is queued, the writer's after.
func (x *Extra) done(rev int64, resps []*etcdserverpb.ResponseOp, err error) {
	if x != nil && x.Done != nil {
		f := x.Done
		x.Done = nil
		f(rev, resps, err)
	}
}

// committed gives each extra of t its responses: they follow the
// writer's own operations at the top level of the transaction.
func (t *txn) committed() {
	at := len(t.resps) - t.extraOps
	for _, x := range t.extras {
		var resps []*etcdserverpb.ResponseOp
		if t.resps != nil && at >= 0 {
			resps = t.resps[at : at+len(x.Ops)]
		}
		at += len(x.Ops)
		x.done(t.rev, resps, nil)
	}
}
