package state

import "time"

// NodeState is where a node stands in a run. States are stored as they read.
type NodeState string

// The node states (docs/ARCHITECTURE.md, "Life of a run").
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

// Options tunes Open. The zero value opens the file for reading and writing,
// durably, with no holder description.
type Options struct {
	// ReadOnly opens the file for reading only. Several readers may share the
	// file; a reader is refused with *LockedError while a writer holds it.
	ReadOnly bool
	// Holder says who opens the file, e.g. "reprise run (pid 4242)". It is
	// shown to a second opener that is refused.
	Holder string
	// NoSync skips fdatasync on commit. For tests and benchmarks only: a
	// crash may then lose or corrupt committed changes.
	NoSync bool
	// CheckOnFirstWrite moves a writer's check of the whole file (every
	// page, record and journal entry) from Open to just before its first
	// write transaction: a session that ends up writing nothing (the resume
	// of a finished run) does not pay for it, and a damaged file is still
	// refused, untouched, before anything is written — the first write
	// fails with the *CorruptError Open would have given, and so does every
	// later one. Open still checks the meta pages and the schema. The
	// writer holds the file's lock from Open on, so nothing else writes to
	// it in between.
	CheckOnFirstWrite bool
}

// RunOptions are the options a run was started with.
type RunOptions struct {
	Parallelism int      `json:"parallelism,omitempty"`
	Targets     []string `json:"targets,omitempty"`
	FailFast    bool     `json:"fail_fast,omitempty"`
	DryRun      bool     `json:"dry_run,omitempty"`
	// Drill marks an exercise on the real plan: plugins are told (they
	// restore into the exercise environment), reports say so, and the
	// clean-up after it is recorded (Run.Cleanup).
	Drill bool `json:"drill,omitempty"`
	// Converge asks every node's Check before its Restore (run --check).
	Converge bool `json:"converge,omitempty"`
}

// Cleanup records that what a drill set up was cleaned up: by whom, when,
// and what was done.
type Cleanup struct {
	By   string    `json:"by"`
	At   time.Time `json:"at"`
	Note string    `json:"note"`
}

// Run is the record of one run of a graph.
type Run struct {
	ID        string     `json:"id"`
	GraphName string     `json:"graph_name,omitempty"`
	GraphFile string     `json:"graph_file,omitempty"`
	GraphHash string     `json:"graph_hash,omitempty"` // hex SHA-256 of the snapshot
	Status    RunStatus  `json:"status"`
	Options   RunOptions `json:"options"`
	Created   time.Time  `json:"created,omitzero"`
	Updated   time.Time  `json:"updated,omitzero"`
	Finished  time.Time  `json:"finished,omitzero"`
	Total     int        `json:"total"` // number of nodes
	// Cleanup is the record of a drill's clean-up (nil: not cleaned up yet,
	// or not a drill).
	Cleanup *Cleanup `json:"cleanup,omitempty"`
	// Certified lists the trust zones certified clean, in order: nodes of a
	// zone start only once every more trusted zone is here.
	Certified []Certification `json:"certified,omitempty"`
}

// Certification records that a trust zone was certified clean: by whom,
// when, and what they checked.
type Certification struct {
	Zone    string    `json:"zone"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment"`
}

// IsCertified reports whether zone is among r.Certified.
func (r Run) IsCertified(zone string) bool {
	for _, c := range r.Certified {
		if c.Zone == zone {
			return true
		}
	}
	return false
}

// Unfinished reports whether the run may still be resumed: it is running
// (or crashed while it was), interrupted, parked on gates, or failed, and
// it is not a drill whose clean-up is recorded.
func (r Run) Unfinished() bool {
	if r.Cleanup != nil {
		return false
	}
	switch r.Status {
	case RunRunning, RunInterrupted, RunParked, RunFailed:
		return true
	}
	return false
}

// MaxHistory is how many attempts a NodeRecord keeps in History; older ones
// are dropped when the record is stored (Attempts still counts them all).
const MaxHistory = 20

// Attempt is one attempt at restoring a node.
type Attempt struct {
	N       int       `json:"n"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	Result  NodeState `json:"result,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// NodeRecord is the stored state of one node in one run. Times come back
// in UTC, to the nanosecond; negative counts are stored as 0.
type NodeRecord struct {
	ID        string            `json:"id"`
	State     NodeState         `json:"state"`
	Attempts  int               `json:"attempts,omitempty"`
	History   []Attempt         `json:"history,omitempty"` // the last MaxHistory attempts, oldest first
	Started   time.Time         `json:"started,omitzero"`  // of the last attempt
	Ended     time.Time         `json:"ended,omitzero"`    // of the last attempt
	LastError string            `json:"last_error,omitempty"`
	Outputs   map[string]string `json:"outputs,omitempty"`
	// Manual gates and operator overrides.
	ApprovedBy      string    `json:"approved_by,omitempty"`
	ApprovalComment string    `json:"approval_comment,omitempty"`
	ApprovedAt      time.Time `json:"approved_at,omitzero"`
	MarkedBy        string    `json:"marked_by,omitempty"`
	MarkReason      string    `json:"mark_reason,omitempty"`
}

// Entry is one journal entry. The journal of a run is append-only and
// hash-chained: Prev is the Hash of the entry before, and Hash is the hex
// SHA-256 of the entry's canonical encoding, which is the exact JSON stored
// for the entry with Hash set to "" (see doc.go).
type Entry struct {
	Seq     uint64            `json:"seq"` // 1, 2, … per run
	Time    time.Time         `json:"time,omitzero"`
	Type    EntryType         `json:"type"` // see entrytype.go
	NodeID  string            `json:"node,omitempty"`
	State   NodeState         `json:"state,omitempty"`
	Attempt int               `json:"attempt,omitempty"`
	Message string            `json:"msg,omitempty"`
	By      string            `json:"by,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	// Record is set by the store on an entry that comes with a node record:
	// the first 16 bytes, in hex, of the SHA-256 of the record as stored, so
	// that Verify can check each node's record against its last entry.
	Record string `json:"record,omitempty"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash"` // must stay the last field: see doc.go
}

// Change is one state transition of a run. Every field that is set is
// applied in the same transaction as the others.
type Change struct {
	RunID string
	// Run, if non-nil, replaces the run record (its ID must be RunID).
	Run *Run
	// Node, if non-nil, replaces that node's record (creating it if new).
	Node *NodeRecord
	// RemoveNode, if not empty, deletes that node's record (a node removed
	// from an edited graph). Removing an unknown node is not an error.
	RemoveNode string
	// Snapshot, if non-nil, replaces the run's graph snapshot (resume
	// --graph); journal it with an Entry in the same Change.
	Snapshot []byte
	// Entry, if non-nil, is appended to the run's journal. The store sets
	// Seq, Prev and Hash, and Time (to the time of the Apply call) when it
	// is zero; times are stored in UTC.
	Entry *Entry
}

// Stats counts the store's work since Open.
type Stats struct {
	Commits uint64 // write transactions committed by the group-commit writer
	Changes uint64 // changes committed
	Applies uint64 // Apply calls whose changes were committed
	Failed  uint64 // Apply calls that got a commit error
}

// VerifyReport is what Verify found in a run's journal.
type VerifyReport struct {
	Entries int  // entries read
	OK      bool // the chain is whole, and the records, snapshot and run record agree with it
	// FirstBad is the sequence number of the first bad entry ("chain"), or
	// of the entry the stored data contradicts ("records", "snapshot",
	// "run"); 0 when OK or when no entry is named.
	FirstBad uint64
	Problem  string // what is wrong
	// Level names the check that failed ("" when OK): "chain" (an entry's
	// bytes, sequence or link, or the head), "records" (a node record that
	// is not the one its last entry recorded), "snapshot" (the graph
	// snapshot does not match the graph hash the run record and the
	// journal give), "run" (the run record is not the one the journal
	// last recorded, or its status is not the one the journal last gave),
	// "anchor" (the chain differs from a head recorded outside the file).
	Level string `json:",omitempty"`
	// HeadSeq and HeadHash are the last entry's sequence number and hash:
	// what an anchor outside the file records.
	HeadSeq  uint64 `json:",omitempty"`
	HeadHash string `json:",omitempty"`
	// Records is how many node records were checked against the journal.
	Records int `json:",omitempty"`
}
