package engine

import (
	"errors"

	"github.com/reprise-si/reprise/engine/state"
)

// ErrNotWaiting is returned by Approve when the node is not a gate waiting
// for approval. It is state.ErrNotWaiting, so that the control socket
// (engine/control) carries it without importing the engine.
var ErrNotWaiting = state.ErrNotWaiting

// ErrUnknownTarget is returned when a --target names no node of the graph.
var ErrUnknownTarget = errors.New("unknown target")

// ErrBusy is returned when an operation needs a run that this process is
// already running (one run at a time per engine).
var ErrBusy = notApplicable("engine is already running a run")

// ErrNotDrill is returned by RecordCleanup for a run that is not a drill.
var ErrNotDrill = notApplicable("run is not a drill")

// ErrCleanedUp is returned when a drill whose clean-up is recorded would be
// put back to work (resume, retry): what it set up is gone.
var ErrCleanedUp = notApplicable("drill already cleaned up")

// ErrPointDecision is returned by Approve for a node that waits on a
// suspicious restore point: it needs RestorePointDecision, not an approval.
var ErrPointDecision = notApplicable("restore point needs a decision")

// ErrZoneNotReady is returned by Certify when the zone's nodes are not all
// done, a more trusted zone is not certified yet, or the zone already is.
var ErrZoneNotReady = notApplicable("zone not ready for certification")

// ErrNodeRunning is returned by an operator's action on a live run (mark,
// retry, a restore-point decision) for a node whose step is running: the
// step's outcome would overwrite the decision.
var ErrNodeRunning = notApplicable("node is running")

// ErrStopping is returned by a retry sent to a live run that is stopping
// (interrupted, or --fail-fast after a failure): nothing new starts.
var ErrStopping = notApplicable("run is stopping")

// conflictError is a sentinel of an action that does not apply to a run as
// it stands: errors.Is matches it and state.ErrNotApplicable.
type conflictError struct{ msg string }

func notApplicable(msg string) error { return &conflictError{msg} }

func (e *conflictError) Error() string { return e.msg }

// Unwrap returns state.ErrNotApplicable.
func (e *conflictError) Unwrap() error { return state.ErrNotApplicable }
