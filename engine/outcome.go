package engine

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// What the scheduler does with a step's outcome: record it, retry or fail
// the node, block its descendants, release its dependents.

// finish records the outcome of one step.
func (r *runner) finish(res result) {
	i := res.idx
	n := r.g.Nodes[i]
	rec := &r.recs[i]
	r.inflight--
	r.perPlugin[n.Plugin]--
	if held := r.held[n.Plugin]; len(held) > 0 {
		for _, h := range held {
			r.queue.push(h)
		}
		delete(r.held, n.Plugin)
	}
	rec.Ended = res.ended
	if h := len(rec.History); h > 0 {
		rec.History[h-1].Ended = res.ended
		rec.History[h-1].Result = attemptResult(res)
		rec.History[h-1].Error = res.message
	}
	// The node's fields, given to each line: a logger With them costs more
	// than the line itself, once a node.
	nodeField, attemptField := zap.String("node", n.ID), zap.Int("attempt", res.attempt)
	nlog := func() *zap.Logger { return r.log.With(nodeField, attemptField) }
	switch {
	case res.status == step.Succeeded:
		r.measured += res.ended.Sub(res.started)
		r.measuredN++
		r.stepTime = ewma(r.stepTime, res.ended.Sub(res.started))
		rec.Outputs = res.outputs
		rec.LastError = ""
		r.setState(i, state.NodeSucceeded)
		typ := state.EntrySucceeded
		if res.restored {
			typ = state.EntryRestored
		}
		ent := r.entry(typ, n.ID, res.message)
		ent.Attempt = res.attempt
		r.addNodeChange(i, ent)
		r.log.Info("node succeeded", nodeField, attemptField, zap.Duration("took", res.ended.Sub(res.started)), zap.String("message", res.message))
		r.finished(i, res.message)
		r.release(i)
	case res.status == step.Waiting:
		if res.outputs[OutputSuspiciousPoint] != "" {
			rec.Outputs = res.outputs // the gate's point, for approve to refuse
		}
		r.setState(i, state.NodeWaiting)
		ent := r.entry(state.EntryWaiting, n.ID, res.message)
		ent.Attempt = res.attempt
		r.addNodeChange(i, ent)
		r.log.Info("node waiting for approval", nodeField, attemptField, zap.String("message", res.message))
		r.finished(i, res.message)
	case res.canceled:
		rec.LastError = res.message
		r.setState(i, state.NodePending)
		ent := r.entry(state.EntryInterrupted, n.ID, res.message)
		ent.Attempt = res.attempt
		r.addNodeChange(i, ent)
		r.log.Warn("node interrupted", nodeField, attemptField, zap.String("error", res.message))
		r.finished(i, res.message)
	default:
		r.failed(i, res, nlog())
	}
}

func (r *runner) failed(i int, res result, nlog *zap.Logger) {
	n := r.g.Nodes[i]
	rec := &r.recs[i]
	rec.LastError = res.message
	allowed := r.g.NodeRetries(n) + 1
	if r.tries[i] < allowed && r.stopping {
		// Interrupted with retries left: the next resume tries again.
		r.setState(i, state.NodePending)
		ent := r.entry(state.EntryRetrying, n.ID, fmt.Sprintf("attempt %d failed: %s; retrying at the next resume (run interrupted)", res.attempt, res.message))
		ent.Attempt = res.attempt
		r.addNodeChange(i, ent)
		nlog.Warn("node attempt failed, retrying at the next resume", zap.String("error", res.message))
		r.finished(i, res.message)
		return
	}
	if r.tries[i] < allowed && !r.failedFast && !res.permanent {
		delay := backoff(r.g.RetryDelay(), r.tries[i])
		r.setState(i, state.NodePending)
		ent := r.entry(state.EntryRetrying, n.ID, fmt.Sprintf("attempt %d failed: %s; retrying in %s", res.attempt, res.message, delay.Round(time.Millisecond)))
		ent.Attempt = res.attempt
		r.addNodeChange(i, ent)
		nlog.Warn("node attempt failed, retrying", zap.String("error", res.message), zap.Duration("delay", delay))
		ev := r.event(EventNodeRetrying, i, res.message)
		ev.Attempt = res.attempt
		r.e.emit(ev)
		r.timers[i] = time.AfterFunc(delay, func() {
			select {
			case r.retryDue <- i:
			case <-r.done:
			}
		})
		return
	}
	r.setState(i, state.NodeFailed)
	ent := r.entry(state.EntryFailed, n.ID, res.message)
	ent.Attempt = res.attempt
	r.addNodeChange(i, ent)
	nlog.Error("node failed", zap.String("error", res.message))
	r.finished(i, res.message)
	r.blockDescendants(i)
	if r.e.opts.FailFast {
		r.failedFast = true
	}
}

// blockDescendants marks every pending descendant of i blocked.
func (r *runner) blockDescendants(i int) {
	id := r.g.Nodes[i].ID
	graphs.Reach(r.a.Dependents, []int{i}, func(d int) bool {
		if r.recs[d].State != state.NodePending {
			return false // done, running or already blocked: not past it
		}
		r.setState(d, state.NodeBlocked)
		r.recs[d].LastError = fmt.Sprintf("upstream node %q failed", id)
		r.addNodeChange(d, r.entry(state.EntryBlocked, r.g.Nodes[d].ID, r.recs[d].LastError))
		r.log.Warn("node blocked", zap.String("node", r.g.Nodes[d].ID), zap.String("upstream", id))
		r.finished(d, r.recs[d].LastError)
		return true
	})
}

// release lets the dependents of a node that is now done become ready.
func (r *runner) release(i int) {
	for _, d := range r.a.Dependents[i] {
		r.waitDeps[d]--
		if r.waitDeps[d] == 0 && r.recs[d].State == state.NodePending && r.may(d) {
			r.queue.push(d)
		}
	}
}

func (r *runner) finished(i int, msg string) {
	ev := r.event(EventNodeFinished, i, msg)
	ev.State = r.recs[i].State
	ev.Attempt = r.recs[i].Attempts
	r.e.emit(ev)
}
