package engine

import (
	"context"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// Steps that start with their commit. A node's running record is durable
// before its step starts: the scheduler commits it, then calls the host.
// When the host sends steps to other machines through the store's own
// cluster (internal/cluster: agents, with the state on etcd), the host can
// write the call in the transaction that records the node running, so
// that the step starts when, and only when, its start is durable, one
// round trip earlier. The scheduler asks for it (Prestart) as it commits
// the nodes it armed; the step's goroutine then makes its Restore call as
// usual, and the host joins it to the call already sent.

// prestarter is a host that can send the first call of steps in the
// commit that records them running (internal/cluster's Dispatcher).
type prestarter interface {
	// Prestart prepares the Restore calls reqs (each with its step's
	// timeout) and returns the writes to commit with the changes
	// recording them running (nil: none), and which of reqs it took. A
	// call it took is made once those writes commit; the step's Restore
	// call with the same request joins it.
	Prestart(reqs []step.Request, timeouts []time.Duration) (extra any, taken []bool)
}

// extraApplier is a store that commits a host's writes with changes
// (etcdstate.Store.ApplyWith).
type extraApplier interface {
	ApplyWith(ctx context.Context, extra any, changes ...state.Change) error
}

// maxPrestart bounds the steps one commit sends.
const maxPrestart = 1000

// prestart asks the host to send, with the commit of the nodes being
// armed, the Restore calls of those that will start as soon as it is
// durable: in the slots free now, with nothing to do before their
// Restore (no Check first, no restore point to choose, a config that
// resolves without the environment). It returns the writes to commit
// (nil: none) and marks the nodes taken (r.pre): they start once the
// commit is durable, even if the run is stopping by then (their call is
// out).
func (r *runner) prestart() any {
	if len(r.arming) == 0 || r.stopping || r.failedFast || r.converging() {
		return nil
	}
	p, ok := r.e.hostOf(r.g).(prestarter)
	if !ok {
		return nil
	}
	if _, ok := r.e.store.(extraApplier); !ok {
		return nil
	}
	free := min(r.e.opts.Parallelism-r.inflight-len(r.armed), maxPrestart)
	var idx []int
	var reqs []step.Request
	var timeouts []time.Duration
	for _, i := range r.arming {
		if len(idx) >= free {
			break
		}
		n := r.g.Nodes[i]
		req := r.request(i, r.recs[i].Attempts, step.ModeNormal)
		if n.RestorePoints != nil || !r.plainConfig(n, req.Inputs) {
			continue
		}
		idx = append(idx, i)
		reqs = append(reqs, req)
		timeouts = append(timeouts, r.g.NodeTimeout(n))
	}
	if len(reqs) == 0 {
		return nil
	}
	extra, taken := p.Prestart(reqs, timeouts)
	if extra == nil {
		return nil
	}
	for k, ok := range taken {
		if ok && k < len(idx) {
			if r.pre == nil {
				r.pre = map[int]bool{}
			}
			r.pre[idx[k]] = true
		}
	}
	return extra
}

// plainConfig reports whether node n's config resolves with inputs alone:
// no ${env:…} or ${secret:…} (resolved by the step's goroutine, so that
// secrets never sit in the scheduler's memory) and every output it names
// known. Its step's goroutine then resolves it as here, and nothing
// between the commit and the Restore call can fail.
func (r *runner) plainConfig(n *graphs.Node, inputs map[string]map[string]string) bool {
	refs := graphs.Refs(n.With)
	for _, ref := range refs {
		if ref.Node == "" {
			return false
		}
	}
	if len(refs) == 0 {
		return true
	}
	_, err := r.e.resolveConfig(n, r.g.Dir, inputs, false)
	return err == nil
}

// launchPrestarted starts the armed nodes whose call went with their
// commit: their step is out already, whatever the free slots or a stop
// say now (prestart took no more than the slots free).
func (r *runner) launchPrestarted() {
	if len(r.pre) == 0 {
		return
	}
	kept := r.armed[:0]
	var out []int
	for _, i := range r.armed {
		if r.pre[i] {
			out = append(out, i)
		} else {
			kept = append(kept, i)
		}
	}
	r.armed = kept
	for _, i := range out {
		delete(r.pre, i)
		r.launch(i)
	}
}
