package state

// EntryType names the kind of a journal entry (Entry.Type). Entry types are
// stored as they read; reports and `reprise log` show them. The engine
// writes the ones below; a reader meets any string a newer reprise wrote.
type EntryType string

// The journal entry types.
const (
	EntryRunCreated     EntryType = "run-created" // written by CreateRun with the run
	EntryRunStarted     EntryType = "run-started"
	EntryRunResumed     EntryType = "run-resumed"
	EntryRunFinished    EntryType = "run-finished" // Message holds the final status
	EntryRunParked      EntryType = "run-parked"
	EntryRunInterrupted EntryType = "run-interrupted"
	EntryGraphChanged   EntryType = "graph-changed" // Data: added, removed, changed, rerun
	EntryStarted        EntryType = "started"
	EntrySucceeded      EntryType = "succeeded"
	EntryFailed         EntryType = "failed"
	EntryRetrying       EntryType = "retrying"
	EntryBlocked        EntryType = "blocked"
	EntryWaiting        EntryType = "waiting"
	EntryApproved       EntryType = "approved" // a gate opens: By, Data approvers/given/needed when it needed several
	// EntryApprovalGiven is one approval of a gate that needs more distinct
	// approvers (graph `approvals: N`): By, Message (the comment), Data
	// given and needed; the gate keeps waiting.
	EntryApprovalGiven EntryType = "approval"
	EntryMarked        EntryType = "marked"
	EntryReset         EntryType = "reset"       // back to pending (resume, retry, graph change)
	EntryRestored      EntryType = "restored"    // found restored by Check on resume
	EntryInterrupted   EntryType = "interrupted" // a step cancelled by a second interrupt
	EntrySkipped       EntryType = "skipped"
	EntryCleanedUp     EntryType = "cleaned-up" // a drill's clean-up: By, Message (what was done)
	// EntryCoordinatorStopped: the coordinator leading the run stopped it
	// for a reason of its own, before the run-interrupted entry: Message
	// (why, and what goes on with it), Data why ("authority-withdrawn":
	// the operator it ran for was revoked, given a new token or lowered
	// below operator), operator, coordinator.
	EntryCoordinatorStopped EntryType = "coordinator-stopped"
	// A notification (graph `notify`) delivered, or an attempt that failed:
	// Data target, event, attempt, final; Message the answer or the error.
	EntryNotified     EntryType = "notified"
	EntryNotifyFailed EntryType = "notify-failed"

	// Written by the store itself so that every change to a node record or
	// a snapshot is journaled (Verify checks records against the journal):
	EntryNodeRemoved      EntryType = "node-removed"      // a Change with RemoveNode
	EntryNodeUpdated      EntryType = "node-updated"      // a Change with a Node and no Entry for it
	EntrySnapshotReplaced EntryType = "snapshot-replaced" // a Change with a Snapshot and no Entry
	EntryRunUpdated       EntryType = "run-updated"       // a Change with a Run and no Entry
	// Clean recovery.
	EntryCertified     EntryType = "zone-certified" // By, Message (comment), Data: zone
	EntryScanned       EntryType = "point-scanned"  // Data: point, time, path, verdict, findings, scanners
	EntryPointSkipped  EntryType = "point-skipped"  // Data: point, time, why (excluded, after the incident)
	EntryPointChosen   EntryType = "point-chosen"   // Data: point, time, path, verdict, data_lost
	EntryPointOverride EntryType = "point-override" // By, Message (reason), Data: action (use, exclude), point
)
