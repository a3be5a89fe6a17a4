package engine

import (
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// EventType names what happened in a run, for live progress displays.
type EventType string

// The event types.
const (
	EventRunStarted   EventType = "run-started"
	EventNodeStarted  EventType = "node-started"
	EventNodeLog      EventType = "node-log"
	EventNodeProgress EventType = "node-progress"
	EventNodeRetrying EventType = "node-retrying"
	EventNodeFinished EventType = "node-finished" // State says how: succeeded, failed, blocked, waiting, skipped
	EventRunFinished  EventType = "run-finished"
	EventRunPausing   EventType = "run-pausing" // first interrupt: nothing new starts
	EventNodeApproved EventType = "node-approved"
	// EventApprovalGiven is one approval of a gate that needs more: the
	// gate keeps waiting (Message says who and how many so far).
	EventApprovalGiven EventType = "approval-given"
	EventNodeOverruled EventType = "node-overruled" // marked done by an operator
	EventZoneCertified EventType = "zone-certified"
	EventPointScanned  EventType = "point-scanned" // a restore point's verdict
)

// Event is one thing that happened in a run. Events are delivered to the
// Options.OnEvent callback of a run from one goroutine at a time, in order.
type Event struct {
	Time    time.Time
	Type    EventType
	RunID   string
	NodeID  string          // empty for run events
	Zone    string          // the zone of zone-certified
	State   state.NodeState // for node-finished
	Attempt int
	Message string  // log line, error, or summary
	Percent float64 // node-progress
	// Counts of nodes by state at the time of the event; Total is the number
	// of nodes in the run.
	Counts map[state.NodeState]int
	Total  int
	// ETA is the estimated time left (zero when unknown).
	ETA time.Duration
}
