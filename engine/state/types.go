// Package state keeps reprise's run state in one go.etcd.io/bbolt file: runs,
// a record per node, and an append-only, hash-chained journal.
package state

// NodeState is where a node stands in a run. States are stored as they read.
type NodeState string

// The node states (DESIGN.md, Run state).
const (
	NodePending   NodeState = "pending"
	NodeRunning   NodeState = "running"
	NodeSucceeded NodeState = "succeeded"
	NodeFailed    NodeState = "failed"
	NodeBlocked   NodeState = "blocked" // an upstream node failed
	NodeWaiting   NodeState = "waiting" // a manual gate waits for approval
	NodeSkipped   NodeState = "skipped" // not targeted, or already restored
)

// NodeStates lists every NodeState in a stable order.
var NodeStates = []NodeState{NodePending, NodeRunning, NodeSucceeded, NodeFailed, NodeBlocked, NodeWaiting, NodeSkipped}

// Done reports whether s needs no more work in this run.
func (s NodeState) Done() bool { return s == NodeSucceeded || s == NodeSkipped }

// RunStatus is where a whole run stands.
type RunStatus string

// The run statuses.
const (
	RunRunning     RunStatus = "running"     // a process is working on it (or crashed while it was)
	RunInterrupted RunStatus = "interrupted" // stopped by a signal; resumable
	RunParked      RunStatus = "parked"      // only manual gates are left
	RunFailed      RunStatus = "failed"      // finished with failed or blocked nodes
	RunSucceeded   RunStatus = "succeeded"   // every node succeeded or was skipped
)
