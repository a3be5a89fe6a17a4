package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Approve approves the manual gate nodeID of run runID: the node succeeds
// and the journal records who approved it, when, and the comment. If this
// engine is running that run (a --wait run), the approval goes through its
// scheduler, which then starts the gate's dependents; otherwise it is written
// to the state store directly and the run goes on at its next resume.
func (e *Engine) Approve(ctx context.Context, runID, nodeID, by, comment string) error {
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("approve node %q: the approver's name is required", nodeID)
	}
	if handled, err := e.onLive(ctx, runID, func(r *runner) error { return r.approve(nodeID, by, comment) }); handled {
		return err
	}
	if run, err := e.store.Run(runID); err != nil {
		return fmt.Errorf("approve: %w", err)
	} else if err := refuseCleanedUp("approve node "+strconv.Quote(nodeID)+" of", run); err != nil {
		return err
	}
	rec, err := e.store.Node(runID, nodeID)
	if errors.Is(err, state.ErrNodeNotFound) {
		return e.nodeNotFound("approve", runID, nodeID)
	}
	if err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	if rec.State != state.NodeWaiting {
		return fmt.Errorf("approve node %q of run %q (state %s): %w", nodeID, runID, rec.State, ErrNotWaiting)
	}
	if err := refusePointGate(runID, rec); err != nil {
		return err
	}
	needed := 1
	if run, err := e.store.Run(runID); err == nil {
		if g, err := e.snapshotGraph(run); err == nil {
			if i, ok := g.Index(nodeID); ok {
				needed = neededApprovals(g, graphs.Analyze(g), i)
			}
		} else {
			return fmt.Errorf("approve node %q: %w", nodeID, err)
		}
	}
	prior, err := GateApprovals(e.store.Journal, runID, nodeID)
	if err != nil {
		return err
	}
	open, err := gateDecision(runID, nodeID, by, prior, needed)
	if err != nil {
		return err
	}
	now := e.opts.Now()
	comment = e.red.String(comment)
	ent, all := approvalEntry(now, nodeID, by, comment, prior, needed, open)
	if open {
		rec.State = state.NodeSucceeded
		rec.ApprovedBy, rec.ApprovalComment, rec.ApprovedAt = all, comment, now
		rec.LastError = "" // an earlier attempt's error is history once the gate is approved
		rec.Ended = now
	}
	ent.State = rec.State
	if err := e.store.Apply(context.WithoutCancel(ctx), state.Change{RunID: runID, Node: &rec, Entry: ent}); err != nil {
		return fmt.Errorf("approve node %q of run %q: %w", nodeID, runID, err)
	}
	if !open {
		e.log.Info("gate approval given", zapRun(runID), zapNode(nodeID), zapString("by", by), zapString("comment", comment))
		e.emit(Event{Time: now, Type: EventApprovalGiven, RunID: runID, NodeID: nodeID, State: state.NodeWaiting,
			Message: fmt.Sprintf("approval %d of %d by %s (approved so far: %s)", len(prior)+1, needed, by, all)})
		return nil
	}
	e.log.Info("node approved", zapRun(runID), zapNode(nodeID), zapString("by", all), zapString("comment", comment))
	e.emit(Event{Time: now, Type: EventNodeApproved, RunID: runID, NodeID: nodeID, State: state.NodeSucceeded,
		Message: "approved by " + all})
	return nil
}

// Mark records an operator's override: node nodeID of run runID is done
// (succeeded) although its step did not succeed, for the reason given. If
// this engine is running that run, the mark goes through its scheduler:
// the nodes it blocked go back to pending and its dependents start at once
// (a node whose step is running is refused: ErrNodeRunning). Otherwise it
// is written to the store and the dependents run at the next resume.
func (e *Engine) Mark(ctx context.Context, runID, nodeID, by, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("mark node %q: a reason is required", nodeID)
	}
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("mark node %q: the name of who decides is required", nodeID)
	}
	if handled, err := e.onLive(ctx, runID, func(r *runner) error { return r.mark(nodeID, by, reason) }); handled {
		return err
	}
	if run, err := e.store.Run(runID); err != nil {
		return fmt.Errorf("mark: %w", err)
	} else if err := refuseCleanedUp("mark node "+strconv.Quote(nodeID)+" of", run); err != nil {
		return err
	}
	rec, err := e.store.Node(runID, nodeID)
	if errors.Is(err, state.ErrNodeNotFound) {
		return e.nodeNotFound("mark", runID, nodeID)
	}
	if err != nil {
		return fmt.Errorf("mark: %w", err)
	}
	now := e.opts.Now()
	was := rec.State
	rec.State = state.NodeSucceeded
	rec.MarkedBy, rec.MarkReason = by, reason
	rec.LastError = ""
	rec.Ended = now
	ch := e.nodeChange(runID, rec, state.EntryMarked, reason)
	ch.Entry.By = by
	ch.Entry.Data = map[string]string{"was": string(was)}
	if err := e.store.Apply(context.WithoutCancel(ctx), ch); err != nil {
		return fmt.Errorf("mark node %q of run %q: %w", nodeID, runID, err)
	}
	e.log.Warn("node marked done by an operator", zapRun(runID), zapNode(nodeID), zapString("by", by),
		zapString("reason", reason), zapString("was", string(was)))
	e.emit(Event{Time: now, Type: EventNodeOverruled, RunID: runID, NodeID: nodeID, State: state.NodeSucceeded,
		Message: fmt.Sprintf("marked done by %s: %s", by, reason)})
	return nil
}

// RecordCleanup records that what drill runID set up was cleaned up: by
// whom and what was done (note), journaled and kept on the run. The run must
// be a drill and not running in this engine; once cleaned up it can no
// longer be resumed or retried. Recording again adds to the journal and
// replaces the run's record.
func (e *Engine) RecordCleanup(ctx context.Context, runID, by, note string) error {
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("record clean-up of run %q: the name of who cleaned up is required", runID)
	}
	if strings.TrimSpace(note) == "" {
		return fmt.Errorf("record clean-up of run %q: a note saying what was cleaned up is required", runID)
	}
	if live := e.LiveRun(); live == runID {
		return fmt.Errorf("record clean-up of run %q: %w", runID, ErrBusy)
	}
	run, err := e.store.Run(runID)
	if err != nil {
		return fmt.Errorf("record clean-up: %w", err)
	}
	if !run.Options.Drill {
		return fmt.Errorf("record clean-up of run %q: %w (only drills are cleaned up)", runID, ErrNotDrill)
	}
	now := e.opts.Now()
	note = e.red.String(note) // the same text on the run and in the journal
	run.Cleanup = &state.Cleanup{By: by, At: now, Note: note}
	run.Updated = now
	ch := state.Change{RunID: runID, Run: &run, Entry: &state.Entry{Time: now, Type: state.EntryCleanedUp,
		By: by, Message: note, Data: map[string]string{"status": string(run.Status)}}}
	if err := e.store.Apply(context.WithoutCancel(ctx), ch); err != nil {
		return fmt.Errorf("record clean-up of run %q: %w", runID, err)
	}
	e.log.Info("drill cleaned up", zapRun(runID), zapString("by", by), zapString("note", note))
	return nil
}

// refuseCleanedUp fails for a drill whose clean-up is recorded.
func refuseCleanedUp(op string, run state.Run) error {
	if c := run.Cleanup; c != nil {
		return fmt.Errorf("%s run %q: %w by %s on %s (%s): start a new drill", op, run.ID, ErrCleanedUp,
			c.By, c.At.UTC().Format(time.RFC3339), c.Note)
	}
	return nil
}

// PlanRetry returns the nodes a retry of node nodeID of run runID (with
// downstream, its descendants too) would put back to pending, each with its
// state and why, without changing anything.
func (e *Engine) PlanRetry(runID, nodeID string, downstream bool) ([]EditItem, error) {
	run, err := e.store.Run(runID)
	if err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if err := refuseCleanedUp("retry node "+strconv.Quote(nodeID)+" of", run); err != nil {
		return nil, err
	}
	g, err := e.snapshotGraph(run)
	if err != nil {
		return nil, err
	}
	start, ok := g.Index(nodeID)
	if !ok {
		return nil, e.nodeNotFound("retry", runID, nodeID)
	}
	todo := []int{start}
	if downstream {
		// Dependencies first: start, then its descendants in order.
		a := graphs.Analyze(g)
		set := a.Descendants(start)
		todo = todo[:0]
		for _, i := range a.Order {
			if set[i] {
				todo = append(todo, i)
			}
		}
	}
	var items []EditItem
	for _, i := range todo {
		id := g.Nodes[i].ID
		rec, err := e.store.Node(runID, id)
		if err != nil {
			return nil, fmt.Errorf("retry: %w", err)
		}
		if rec.State == state.NodePending || (rec.State == state.NodeSkipped && i != start) {
			continue
		}
		why := "retry requested"
		if i != start {
			why = fmt.Sprintf("retry of %q with its downstream", nodeID)
		}
		items = append(items, EditItem{ID: id, State: rec.State, Reason: why})
	}
	return items, nil
}

// nodeNotFound is the error for a node id that run runID does not have,
// with the nearest id when one is near enough ("did you mean").
func (e *Engine) nodeNotFound(op, runID, nodeID string) error {
	var ids []string
	if recs, err := e.store.Nodes(runID); err == nil {
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
	}
	return fmt.Errorf("%s node %q of run %q: %w%s", op, nodeID, runID, state.ErrNodeNotFound, didYouMean(nodeID, ids))
}

// didYouMean is ` (did you mean "ID"?)` with the id nearest to a mistyped
// one, or "" when none is near enough.
func didYouMean(id string, ids []string) string {
	if c := graphs.Suggest(id, ids); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// may reports whether node i may start in this session (retry starts only
// the nodes it reset).
func (r *runner) may(i int) bool { return r.only == nil || r.only[i] }

// ResetNodes puts node nodeID of run runID back to pending, and with
// downstream every descendant too (a succeeded node runs again), journaling
// each reset with who asked. It returns the ids reset. If this engine is
// running that run, the reset goes through its scheduler and the nodes run
// again at once (see runner.retry); otherwise it is written to the store
// and they run at the next resume (Retry calls it, then ResumeWith).
func (e *Engine) ResetNodes(ctx context.Context, runID, nodeID string, downstream bool, by string) ([]string, error) {
	var reset []string
	if handled, err := e.onLive(ctx, runID, func(r *runner) (err error) {
		reset, err = r.retry(nodeID, downstream, by)
		return err
	}); handled {
		return reset, err
	}
	items, err := e.PlanRetry(runID, nodeID, downstream)
	if err != nil {
		return nil, err
	}
	run, err := e.store.Run(runID)
	if err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	var changes []state.Change
	var ids []string
	for _, it := range items {
		rec, err := e.store.Node(runID, it.ID)
		if err != nil {
			return nil, fmt.Errorf("retry: %w", err)
		}
		rec.State = state.NodePending
		ch := e.nodeChange(runID, rec, state.EntryReset, it.Reason)
		ch.Entry.By = by
		ch.Entry.Data = map[string]string{"was": string(it.State)}
		changes = append(changes, ch)
		ids = append(ids, it.ID)
	}
	if len(changes) == 0 {
		return nil, nil
	}
	if run.Status == state.RunSucceeded || run.Status == state.RunFailed {
		// The run has work again: never leave it "succeeded" with pending
		// nodes (Resume trusts that status), even if it is not resumed now.
		run.Status = state.RunInterrupted
		run.Finished = time.Time{}
		run.Updated = e.opts.Now()
		changes[0].Run = &run
	}
	if err := e.store.Apply(context.WithoutCancel(ctx), changes...); err != nil {
		return nil, fmt.Errorf("retry node %q of run %q: %w", nodeID, runID, err)
	}
	return ids, nil
}

// Retry resets node nodeID of run runID (and its descendants with
// downstream) to pending and resumes the run with only those nodes: other
// failed nodes of the run stay failed (resume runs them again).
func (e *Engine) Retry(ctx context.Context, runID, nodeID string, downstream bool, by string) (Result, error) {
	ids, err := e.ResetNodes(ctx, runID, nodeID, downstream, by)
	if err != nil {
		return Result{}, err
	}
	if len(ids) == 0 {
		ids = []string{nodeID} // already pending
	}
	return e.ResumeWith(ctx, runID, ResumeOptions{Only: ids})
}

func (r *runner) nodeIDs() []string {
	ids := make([]string, len(r.g.Nodes))
	for i, n := range r.g.Nodes {
		ids[i] = n.ID
	}
	return ids
}
