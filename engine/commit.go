package engine

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// The scheduler's commit pipeline: pending changes go to the store in one
// background Apply at a time (see doc.go, Durability).

// flush hands every pending change to the store in one Apply, in the
// background: the loop goes on taking results and starting armed nodes
// while it commits. One commit at a time, in order, so a node's running
// record is never durable after a later change, and a dependent (armed in
// a later batch) never starts before the success it depends on is durable.
func (r *runner) flush() {
	if r.inCommit || len(r.changes) == 0 || r.hold() {
		return
	}
	r.commit()
}

// commit starts the background commit of every pending change.
func (r *runner) commit() {
	r.holding = false
	r.commitStarted = time.Now()
	changes := r.changes
	r.changes = nil
	extra := r.prestart()
	r.committing = append(r.committing[:0], r.arming...)
	r.arming = r.arming[:0]
	r.inCommit = true
	if extra != nil {
		st := r.e.store.(extraApplier)
		go func() { r.commitDone <- st.ApplyWith(r.pctx, extra, changes...) }()
		return
	}
	go func() { r.commitDone <- r.e.store.Apply(r.pctx, changes...) }()
}

// committed takes the outcome of the background commit: its armed nodes
// may start.
func (r *runner) committed(err error) error {
	r.inCommit = false
	r.commitTime = ewma(r.commitTime, time.Since(r.commitStarted))
	if err != nil {
		return fmt.Errorf("persist run %q: %w", r.run.ID, err)
	}
	r.armed = append(r.armed, r.committing...)
	r.committing = r.committing[:0]
	r.launchArmed()
	return nil
}

// flushSync makes every pending change durable before it returns (an
// approval's answer, the run's end).
func (r *runner) flushSync() error {
	if r.inCommit {
		if err := r.committed(<-r.commitDone); err != nil {
			return err
		}
	}
	if len(r.changes) > 0 {
		r.commit()
	}
	if !r.inCommit {
		return nil
	}
	return r.committed(<-r.commitDone)
}

// hold reports whether the next commit should wait for the steps in
// flight. When steps are short and all the work started (in flight and
// armed) should end within one commit's time, one commit after it carries
// their outcomes and the starts of every dependent they allow; committing
// at once would carry a few, and the rest would wait for that commit and
// the next (two commits a dependency level instead of one). It waits at
// most one commit's time, measured; never while the run stops, nor when
// nothing runs.
func (r *runner) hold() bool {
	if r.inflight == 0 || r.stopping || r.failedFast || r.commitTime == 0 ||
		r.stepTime == 0 || r.stepTime >= shortStep {
		r.holding = false
		return false
	}
	now := time.Now()
	if !r.holding {
		work := time.Duration(r.inflight+len(r.armed)) * r.stepTime / time.Duration(r.e.opts.Parallelism)
		if work >= r.commitTime {
			return false
		}
		r.holding = true
		r.holdUntil = now.Add(r.commitTime)
		if r.holdTimer == nil {
			r.holdTimer = time.NewTimer(r.commitTime)
		} else {
			r.holdTimer.Reset(r.commitTime)
		}
		return true
	}
	if now.Before(r.holdUntil) {
		return true
	}
	r.holding = false
	return false
}

// holdDone is the channel of the hold's timer: nil when not holding.
func (r *runner) holdDone() <-chan time.Time {
	if !r.holding {
		return nil
	}
	return r.holdTimer.C
}

// ewma moves a running average a quarter of the way to d.
func ewma(avg, d time.Duration) time.Duration {
	if avg == 0 {
		return d
	}
	return avg + (d-avg)/4
}

// abort stops after a failure of the state store: running steps are
// cancelled and waited for; what was persisted stays consistent (nodes left
// running are checked on resume).
func (r *runner) abort(err error) (Result, error) {
	r.log.Error("run aborted", zap.Error(err))
	if r.inCommit {
		<-r.commitDone
		r.inCommit = false
	}
	for _, t := range r.timers {
		t.Stop()
	}
	r.stop()
	for r.inflight > 0 {
		<-r.results
		r.inflight--
	}
	return r.result(), err
}
