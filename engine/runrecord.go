package engine

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/engine/view"
)

// This file holds the runner's bookkeeping: node states and counts, journal
// entries and changes, events, the ETA and the run's final status.

// setState moves node i to state s, keeping the counts.
func (r *runner) setState(i int, s state.NodeState) {
	old := r.recs[i].State
	if old == s {
		return
	}
	r.counts[old]--
	r.counts[s]++
	r.recs[i].State = s
}

// doneCount is the number of nodes succeeded or skipped.
func (r *runner) doneCount() int {
	return r.counts[state.NodeSucceeded] + r.counts[state.NodeSkipped]
}

// finishRun persists the run's final status.
func (r *runner) finishRun() (Result, error) {
	res := r.result()
	now := r.e.opts.Now()
	r.run.Status = res.Status
	r.run.Updated = now
	typ := state.EntryRunFinished
	switch res.Status {
	case state.RunSucceeded, state.RunFailed:
		r.run.Finished = now
	case state.RunParked:
		typ = state.EntryRunParked
	case state.RunInterrupted:
		typ = state.EntryRunInterrupted
	}
	msg := summary(res)
	r.addRunChange(r.entry(typ, "", msg))
	if err := r.flushSync(); err != nil {
		return res, err
	}
	st := r.e.store.Stats() // the store's since it was opened: this run's in the CLI
	r.log.Info("run "+string(res.Status), zap.String("summary", msg),
		zap.Uint64("commits", st.Commits), zap.Uint64("changes", st.Changes))
	r.e.emit(r.event(EventRunFinished, -1, msg))
	return res, nil
}

// result is the run's outcome from its node states.
func (r *runner) result() Result {
	res := Result{RunID: r.run.ID, Total: len(r.recs), Counts: r.countsCopy()}
	for i := range r.recs {
		switch r.recs[i].State {
		case state.NodeFailed:
			res.Failed = append(res.Failed, NodeError{ID: r.recs[i].ID, Error: r.recs[i].LastError})
		case state.NodeBlocked:
			res.Blocked = append(res.Blocked, r.recs[i].ID)
		case state.NodeWaiting:
			res.Waiting = append(res.Waiting, r.recs[i].ID)
		}
	}
	res.Uncertified = r.uncertified()
	switch {
	case r.doneCount() == len(r.recs):
		res.Status = state.RunSucceeded
	case r.interrupted:
		res.Status = state.RunInterrupted
	case len(res.Failed)+len(res.Blocked) > 0 || r.failedFast:
		res.Status = state.RunFailed
	case len(res.Waiting) > 0 || len(res.Uncertified) > 0:
		res.Status = state.RunParked
	case r.only != nil && r.counts[state.NodePending] > 0:
		// A retry ran what it was asked to; the rest waits for a resume.
		res.Status = state.RunInterrupted
	default:
		res.Status = state.RunFailed
	}
	return res
}

// summary says a Result in one line.
func summary(res Result) string {
	s := fmt.Sprintf("%s: %d/%d done", res.Status, res.Counts[state.NodeSucceeded]+res.Counts[state.NodeSkipped], res.Total)
	if n := len(res.Failed); n > 0 {
		s += fmt.Sprintf(", %d failed", n)
	}
	if n := len(res.Blocked); n > 0 {
		s += fmt.Sprintf(", %d blocked", n)
	}
	if len(res.Uncertified) > 0 {
		s += fmt.Sprintf(", waiting for zone %s to be certified", res.Uncertified[0])
	}
	if n := len(res.Waiting); n > 0 {
		s += fmt.Sprintf(", %d waiting for approval", n)
	}
	if n := res.Counts[state.NodePending]; n > 0 {
		s += fmt.Sprintf(", %d pending", n)
	}
	return s
}

// countsCopy returns the non-zero counts of nodes by state.
func (r *runner) countsCopy() map[state.NodeState]int {
	m := make(map[state.NodeState]int, len(r.counts))
	for k, v := range r.counts {
		if v != 0 {
			m[k] = v
		}
	}
	return m
}

// eta is the time left, the same computation as `reprise status`
// (view.Estimate) so that the bar and status agree. It costs O(V+E): it is
// computed again at most once every etaEvery events (every event for
// graphs up to etaBatch nodes), and at the start and the end of the run.
func (r *runner) eta(force bool) time.Duration {
	if r.etaSince > 0 && r.etaSince < max(1, len(r.recs)/etaBatch) && !force {
		r.etaSince++
		return r.etaLast
	}
	r.etaSince = 1
	r.etaLast = view.Estimate(r.g, r.a, r.recs, r.e.opts.Parallelism, r.e.opts.Now())
	return r.etaLast
}

// etaBatch bounds the ETA's cost over a run: recomputed every V/etaBatch
// events, it costs O(etaBatch·(V+E)) per V events.
const etaBatch = 64

// event builds an Event about node i (-1: the run).
func (r *runner) event(t EventType, i int, msg string) Event {
	if r.e.opts.OnEvent == nil {
		// Nobody listens: emit drops the event, so skip building it.
		return Event{Type: t}
	}
	ev := Event{Time: r.e.opts.Now(), Type: t, RunID: r.run.ID, Message: msg, Total: len(r.recs)}
	if i >= 0 {
		ev.NodeID = r.g.Nodes[i].ID
	}
	if t != EventNodeLog && t != EventNodeProgress && !r.e.opts.NoProgress {
		ev.Counts = r.countsCopy()
		ev.ETA = r.eta(t == EventRunStarted || t == EventRunFinished)
	}
	return ev
}

// entry builds a journal entry; its message is redacted.
func (r *runner) entry(t state.EntryType, node, msg string) *state.Entry {
	return &state.Entry{Time: r.e.opts.Now(), Type: t, NodeID: node, Message: r.e.red.String(msg)}
}

// addNodeChange queues node i's record with its entry for the next flush.
func (r *runner) addNodeChange(i int, ent *state.Entry) {
	rec := r.recs[i]
	// The commit encodes the record in another goroutine while the loop
	// goes on: it gets its own copy of the history (Outputs maps are
	// replaced, never changed in place).
	rec.History = append([]state.Attempt(nil), rec.History...)
	ent.State = rec.State
	r.changes = append(r.changes, state.Change{RunID: r.run.ID, Node: &rec, Entry: ent})
}

// addRunChange queues the run record with its entry for the next flush.
func (r *runner) addRunChange(ent *state.Entry) {
	run := r.run
	run.Updated = r.e.opts.Now()
	r.changes = append(r.changes, state.Change{RunID: r.run.ID, Run: &run, Entry: ent})
}

// attemptResult is the state an attempt ended in, as kept in a node's history.
func attemptResult(res result) state.NodeState {
	switch {
	case res.status == step.Succeeded:
		return state.NodeSucceeded
	case res.status == step.Waiting:
		return state.NodeWaiting
	case res.canceled:
		return state.NodePending
	default:
		return state.NodeFailed
	}
}
