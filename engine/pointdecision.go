package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// The restore-point decisions an operator may record.
const (
	PointUse     = "use"     // restore from this point whatever its verdict or time
	PointExclude = "exclude" // never restore from this point
)

// RestorePointDecision records an operator's decision on a restore point
// of node nodeID in run runID: use it (whatever its verdict, even if taken
// after the incident was detected) or exclude it. The decision is
// journaled with who and why, and the engine follows it the next time it
// chooses the node's point. A node waiting on a suspicious point goes back
// to pending, so that the next resume restores it; a node already restored
// is refused (retry it to restore again), and so is a node whose step is
// running. If this engine is running that run, the decision goes through
// its scheduler and a waiting node starts again at once.
func (e *Engine) RestorePointDecision(ctx context.Context, runID, nodeID, action, pointID, by, reason string) error {
	op := fmt.Sprintf("%s restore point %q of node %q", action, pointID, nodeID)
	switch {
	case action != PointUse && action != PointExclude:
		return fmt.Errorf("restore point of node %q: unknown decision %q (want %s or %s)", nodeID, action, PointUse, PointExclude)
	case strings.TrimSpace(pointID) == "":
		return fmt.Errorf("%s: the point's id is required", op)
	case strings.TrimSpace(by) == "":
		return fmt.Errorf("%s: the name of who decides is required", op)
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("%s: a reason is required", op)
	}
	if handled, err := e.onLive(ctx, runID, func(r *runner) error {
		return r.pointDecision(nodeID, action, pointID, by, reason)
	}); handled {
		return err
	}
	run, err := e.store.Run(runID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := refuseCleanedUp(op+" of", run); err != nil {
		return err
	}
	g, err := e.snapshotGraph(run)
	if err != nil {
		return err
	}
	rec, err := e.store.Node(runID, nodeID)
	if err != nil && !errors.Is(err, state.ErrNodeNotFound) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkPointDecision(g, runID, rec, nodeID, pointID, op); err != nil {
		return err
	}
	now := e.opts.Now()
	reason = e.red.String(reason)
	changes := []state.Change{{RunID: runID, Entry: pointOverrideEntry(now, nodeID, action, pointID, by, reason)}}
	if rec.State == state.NodeWaiting {
		rec.State = state.NodePending
		delete(rec.Outputs, OutputSuspiciousPoint)
		ch := e.nodeChange(runID, rec, state.EntryReset, fmt.Sprintf("restore point decided: %s %s", action, pointID))
		ch.Entry.By = by
		changes = append(changes, ch)
	}
	if err := e.store.Apply(context.WithoutCancel(ctx), changes...); err != nil {
		return fmt.Errorf("%s of run %q: %w", op, runID, err)
	}
	e.log.Info("restore point decided", zapRun(runID), zapNode(nodeID), zapString("action", action),
		zapString("point", pointID), zapString("by", by), zapString("reason", reason))
	return nil
}

// checkPointDecision checks a decision on point pointID of node nodeID
// (record rec) against run runID's graph g: the node declares that point,
// and is neither restored nor restoring.
func checkPointDecision(g *graphs.Graph, runID string, rec state.NodeRecord, nodeID, pointID, op string) error {
	n, ok := g.Node(nodeID)
	if !ok {
		return fmt.Errorf("%s of run %q: %w", op, runID, state.ErrNodeNotFound)
	}
	if n.RestorePoints == nil {
		return fmt.Errorf("%s of run %q: the node declares no restore_points", op, runID)
	}
	if !n.RestorePoints.FromPlugin && !hasPoint(n.RestorePoints.Points, pointID) {
		ids := make([]string, len(n.RestorePoints.Points))
		for k, p := range n.RestorePoints.Points {
			ids[k] = p.ID
		}
		return fmt.Errorf("%s of run %q: unknown point (want one of %s)", op, runID, strings.Join(ids, ", "))
	}
	switch rec.State {
	case state.NodeSucceeded:
		return fmt.Errorf("%s of run %q: %w: the node is %s (restored from %q): retry it to restore it again", op, runID, state.ErrNotApplicable, rec.State, rec.Outputs[OutputRestorePoint])
	case state.NodeRunning:
		return fmt.Errorf("%s of run %q: %w: its step is choosing or restoring a point now; decide once it has ended", op, runID, ErrNodeRunning)
	}
	return nil
}

func pointOverrideEntry(now time.Time, nodeID, action, pointID, by, reason string) *state.Entry {
	return &state.Entry{Time: now, Type: state.EntryPointOverride, NodeID: nodeID,
		By: by, Message: reason, Data: map[string]string{"action": action, "point": pointID}}
}

// pointDecision records a decision in the live run: persisted before it
// returns; a node waiting on a suspicious point goes back to pending and
// starts again (its next choice reads the decision from the journal).
func (r *runner) pointDecision(nodeID, action, pointID, by, reason string) error {
	op := fmt.Sprintf("%s restore point %q of node %q", action, pointID, nodeID)
	i, ok := r.g.Index(nodeID)
	if !ok {
		return fmt.Errorf("%s of run %q: %w%s", op, r.run.ID, state.ErrNodeNotFound, didYouMean(nodeID, r.nodeIDs()))
	}
	if err := checkPointDecision(r.g, r.run.ID, r.recs[i], nodeID, pointID, op); err != nil {
		return err
	}
	reason = r.e.red.String(reason)
	r.changes = append(r.changes, state.Change{RunID: r.run.ID, Entry: pointOverrideEntry(r.e.opts.Now(), nodeID, action, pointID, by, reason)})
	if rec := &r.recs[i]; rec.State == state.NodeWaiting {
		out := maps.Clone(rec.Outputs) // Outputs maps are replaced, never changed in place
		delete(out, OutputSuspiciousPoint)
		rec.Outputs = out
		r.setState(i, state.NodePending)
		ent := r.entry(state.EntryReset, nodeID, fmt.Sprintf("restore point decided: %s %s", action, pointID))
		ent.By = by
		r.addNodeChange(i, ent)
		if r.waitDeps[i] == 0 && r.may(i) {
			r.queue.push(i)
		}
	}
	if err := r.flushSync(); err != nil {
		return err
	}
	r.log.Info("restore point decided", zap.String("node", nodeID), zap.String("action", action),
		zap.String("point", pointID), zap.String("by", by), zap.String("reason", reason))
	return nil
}
