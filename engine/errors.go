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
var ErrBusy = errors.New("engine is already running a run")

// ErrNotDrill is returned by RecordCleanup for a run that is not a drill.
var ErrNotDrill = errors.New("run is not a drill")

// ErrCleanedUp is returned when a drill whose clean-up is recorded would be
// put back to work (resume, retry): what it set up is gone.
var ErrCleanedUp = errors.New("drill already cleaned up")

// ErrPointDecision is returned by Approve for a node that waits on a
// suspicious restore point: it needs RestorePointDecision, not an approval.
var ErrPointDecision = errors.New("restore point needs a decision")
