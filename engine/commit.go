package engine

import (
	"fmt"

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
	if r.inCommit || len(r.changes) == 0 {
		return
	}
	changes := r.changes
	r.changes = nil
	r.committing = append(r.committing[:0], r.arming...)
	r.arming = r.arming[:0]
	r.inCommit = true
	go func() { r.commitDone <- r.e.store.Apply(r.pctx, changes...) }()
}

// committed takes the outcome of the background commit: its armed nodes
// may start.
func (r *runner) committed(err error) error {
	r.inCommit = false
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
	r.flush()
	if !r.inCommit {
		return nil
	}
	return r.committed(<-r.commitDone)
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
