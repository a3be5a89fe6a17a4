package state

import "context"

// Backend is where run state lives: the bbolt file of one machine (*Store,
// the default) or an etcd cluster shared by several (package etcdstate).
// Both keep the same records, the same binary node codec and the same
// hash-chained journal, so that everything above them — the engine, the
// views, the web server, the commands — behaves the same on either.
//
// Every method is safe for concurrent use. Apply group-commits concurrent
// calls and returns once their changes are durable; reads see every change
// whose Apply has returned. What is specific to the file (its lock, its
// control socket, CheckDir) stays on *Store.
type Backend interface {
	// CreateRun stores a new run with its snapshot and node records and
	// journals its run-created entry, atomically (ErrRunExists if taken).
	CreateRun(ctx context.Context, run Run, snapshot []byte, nodes []NodeRecord) error
	// Apply applies changes, each with its journal entry, durably.
	Apply(ctx context.Context, changes ...Change) error

	// Run returns the record of run id, or ErrRunNotFound.
	Run(id string) (Run, error)
	// Runs returns every run, newest first.
	Runs() ([]Run, error)
	// LatestUnfinished returns the newest resumable run, or ErrNoRun.
	LatestUnfinished() (Run, error)
	// Nodes returns the node records of a run, sorted by id.
	Nodes(runID string) ([]NodeRecord, error)
	// Node returns one node record, or ErrRunNotFound or ErrNodeNotFound.
	Node(runID, nodeID string) (NodeRecord, error)
	// Snapshot returns a run's graph snapshot (ErrTampered when it does not
	// match the run's graph hash).
	Snapshot(runID string) ([]byte, error)
	// Journal calls fn with each entry of a run's journal after afterSeq,
	// in order.
	Journal(runID string, afterSeq uint64, fn func(Entry) error) error
	// Head returns the sequence number and hash of a run's last entry.
	Head(runID string) (seq uint64, hash string, err error)
	// Verify checks a run against its journal (chain, records, snapshot).
	Verify(runID string) (VerifyReport, error)

	// Operators returns every dashboard operator, by name.
	Operators() ([]Operator, error)
	// PutOperator stores op, replacing one of the same name.
	PutOperator(op Operator) error
	// DeleteOperator removes an operator, or fails with ErrOperatorNotFound.
	DeleteOperator(name string) error

	// Stats counts the backend's commits since it was opened.
	Stats() Stats
	// Path says where the state is, for messages: the file's path, or the
	// state URL (etcd://…).
	Path() string
	// Close commits what is queued and releases the backend.
	Close() error
}

var _ Backend = (*Store)(nil)
