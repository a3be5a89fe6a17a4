package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/reprise-si/reprise/engine/state"
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
// is refused (retry it to restore again). The run must not be running in
// this engine.
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
	if live := e.LiveRun(); live == runID {
		return fmt.Errorf("%s of run %q: %w", op, runID, ErrBusy)
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
	rec, err := e.store.Node(runID, nodeID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if rec.State == state.NodeSucceeded || rec.State == state.NodeRunning {
		return fmt.Errorf("%s of run %q: the node is %s (restored from %q): retry it to restore it again", op, runID, rec.State, rec.Outputs[OutputRestorePoint])
	}
	now := e.opts.Now()
	reason = e.red.String(reason)
	changes := []state.Change{{RunID: runID, Entry: &state.Entry{Time: now, Type: state.EntryPointOverride, NodeID: nodeID,
		By: by, Message: reason, Data: map[string]string{"action": action, "point": pointID}}}}
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
