package engine

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
)

// An operator's action on the run this engine is running (approve,
// certify, mark, retry, a restore-point decision: through the control
// socket, from another terminal or the web) is handed to the scheduler's
// loop goroutine, the only one that touches the runner, and applied there
// between two events: journaled and made durable before the caller gets
// its answer, then the run goes on from the new state at once.

// liveOp is one such action: do runs in the loop goroutine.
type liveOp struct {
	do    func(r *runner) error
	reply chan error
}

// onLive hands do to the scheduler when this engine is running run runID
// and returns its error with handled set. handled is false when it is not
// (or the run ended before taking it): the caller writes to the store.
func (e *Engine) onLive(ctx context.Context, runID string, do func(r *runner) error) (handled bool, err error) {
	e.mu.Lock()
	live := e.live
	e.mu.Unlock()
	if live == nil || live.run.ID != runID {
		return false, nil
	}
	reply := make(chan error, 1)
	select {
	case live.ops <- liveOp{do: do, reply: reply}:
	case <-live.done:
		return false, nil // ended meanwhile: its last changes are durable
	case <-ctx.Done():
		return true, ctx.Err()
	}
	select {
	case err := <-reply:
		return true, err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// mark marks node nodeID done in the live run: persisted before it
// returns; the nodes its failure blocked go back to pending and its
// dependents start.
func (r *runner) mark(nodeID, by, reason string) error {
	i, ok := r.g.Index(nodeID)
	if !ok {
		return fmt.Errorf("mark node %q of run %q: %w%s", nodeID, r.run.ID, state.ErrNodeNotFound, didYouMean(nodeID, r.nodeIDs()))
	}
	rec := &r.recs[i]
	was := rec.State
	if was == state.NodeRunning {
		return fmt.Errorf("mark node %q of run %q: %w: wait for its step to end (status shows it), then mark it", nodeID, r.run.ID, ErrNodeRunning)
	}
	rec.MarkedBy, rec.MarkReason = by, reason
	rec.LastError = ""
	rec.Ended = r.e.opts.Now()
	r.setState(i, state.NodeSucceeded)
	ent := r.entry(state.EntryMarked, nodeID, reason)
	ent.By = by
	ent.Data = map[string]string{"was": string(was)}
	r.addNodeChange(i, ent)
	if !was.Done() {
		r.unblockBelow(i, fmt.Sprintf("upstream node %q marked done by %s", nodeID, by))
		r.release(i)
	}
	if err := r.flushSync(); err != nil {
		return err
	}
	r.log.Warn("node marked done by an operator", zap.String("node", nodeID), zap.String("by", by),
		zap.String("reason", reason), zap.String("was", string(was)))
	ev := r.event(EventNodeOverruled, i, fmt.Sprintf("marked done by %s: %s", by, reason))
	ev.State = state.NodeSucceeded
	r.e.emit(ev)
	return nil
}

// retry puts node nodeID (with downstream, its descendants too) back to
// pending in the live run, journaled with who asked, with a fresh budget
// of retries; the nodes its failure blocked go back to pending too, and
// what is ready starts at once. It returns the ids reset (none: already
// pending). A run that is stopping takes no retry (ErrStopping), and a node
// whose step is running is refused (ErrNodeRunning).
func (r *runner) retry(nodeID string, downstream bool, by string) ([]string, error) {
	start, ok := r.g.Index(nodeID)
	if !ok {
		return nil, fmt.Errorf("retry node %q of run %q: %w%s", nodeID, r.run.ID, state.ErrNodeNotFound, didYouMean(nodeID, r.nodeIDs()))
	}
	if r.stopping || r.failedFast {
		return nil, fmt.Errorf("retry node %q of run %q: %w (interrupted, or --fail-fast after a failure): retry it once it has stopped", nodeID, r.run.ID, ErrStopping)
	}
	todo := []int{start}
	if downstream {
		set := r.a.Descendants(start)
		todo = todo[:0]
		for _, i := range r.a.Order {
			if set[i] {
				todo = append(todo, i)
			}
		}
	}
	var items []int
	for _, i := range todo {
		switch st := r.recs[i].State; {
		case st == state.NodeRunning:
			return nil, fmt.Errorf("retry node %q of run %q: %w: node %q is running; wait for its step to end", nodeID, r.run.ID, ErrNodeRunning, r.g.Nodes[i].ID)
		case st == state.NodePending, st == state.NodeSkipped && i != start:
			continue
		}
		items = append(items, i)
	}
	if len(items) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(items))
	affected := map[int]bool{}
	for _, i := range items {
		was := r.recs[i].State
		why := "retry requested"
		if i != start {
			why = fmt.Sprintf("retry of %q with its downstream", nodeID)
		}
		r.setState(i, state.NodePending)
		r.tries[i] = 0
		if r.only != nil {
			r.only[i] = true
		}
		ent := r.entry(state.EntryReset, r.g.Nodes[i].ID, why)
		ent.By = by
		ent.Data = map[string]string{"was": string(was)}
		r.addNodeChange(i, ent)
		ids = append(ids, r.g.Nodes[i].ID)
		affected[i] = true
		for _, d := range r.a.Dependents[i] {
			affected[d] = true
		}
	}
	r.unblockBelow(start, fmt.Sprintf("upstream node %q retried by %s", nodeID, by))
	// A node done before may be pending again: count again what its
	// dependents wait for.
	for d := range affected {
		r.waitDeps[d] = 0
		for _, p := range r.a.Deps[d] {
			if !r.recs[p].State.Done() {
				r.waitDeps[d]++
			}
		}
	}
	for _, i := range items {
		if r.recs[i].State == state.NodePending && r.waitDeps[i] == 0 && r.may(i) {
			r.queue.push(i)
		}
	}
	if err := r.flushSync(); err != nil {
		return nil, err
	}
	r.log.Info("nodes reset by an operator", zap.String("node", nodeID), zap.Bool("downstream", downstream),
		zap.String("by", by), zap.Strings("reset", ids))
	for _, i := range items {
		ev := r.event(EventNodeRetrying, i, "retry requested by "+by)
		ev.State = state.NodePending
		r.e.emit(ev)
	}
	return ids, nil
}

// unblockBelow puts back to pending the blocked descendants of node i that
// no failed or blocked dependency holds back any more (i was marked done
// or retried), journaling why, and queues those that are ready.
func (r *runner) unblockBelow(i int, why string) {
	set := r.a.Descendants(i)
	for _, d := range r.a.Order {
		if !set[d] || d == i || r.recs[d].State != state.NodeBlocked {
			continue
		}
		held := false
		for _, p := range r.a.Deps[d] {
			if s := r.recs[p].State; s == state.NodeFailed || s == state.NodeBlocked {
				held = true
				break
			}
		}
		if held {
			continue
		}
		r.recs[d].LastError = ""
		r.setState(d, state.NodePending)
		r.addNodeChange(d, r.entry(state.EntryReset, r.g.Nodes[d].ID, why))
		if r.waitDeps[d] == 0 && r.may(d) {
			r.queue.push(d)
		}
	}
}
