// Package control serves a running reprise process's state over a unix
// socket beside its state file (STATE.sock, mode 0600), so that `reprise
// status`, `runs` and `log` work from another terminal while bbolt's
// exclusive lock keeps them out of the file itself, and so that an
// operator's actions (approve, certify, restore-point, retry, mark,
// cleanup: Actions) reach the process that holds the file: the engine
// applies them to the run it is running, which goes on from there, or
// writes them to the file for a run it is not running.
//
// Only the user who owns the state file is served: the socket is 0600,
// and a client checks that the server runs as that user (SO_PEERCRED)
// before trusting its answer. Names in an action (By) are the operator's
// word, as --by is on the command line; the dashboard (internal/web) puts
// there the name of the operator it authenticated.
//
// The protocol is JSON lines: the client writes one Request and reads
// Frames until one has End set. A journal answer streams one Frame per
// entry before the end. On any failure the server answers with Error (and a
// Code that the client maps back to the state package's sentinel errors);
// a crashed server leaves a stale socket file, which the next server removes
// (it holds the state file's lock, so no other server can be using it).
package control

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/reprise-si/reprise/engine/state"
)

// SocketPath is the control socket of the state file at statePath.
func SocketPath(statePath string) string { return statePath + socketSuffix }

const socketSuffix = ".sock"

// Op names a request.
type Op string

// The operations.
const (
	OpPing     Op = "ping"
	OpRuns     Op = "runs"
	OpRun      Op = "run"
	OpLatest   Op = "latest-unfinished"
	OpNodes    Op = "nodes"
	OpSnapshot Op = "snapshot"
	OpJournal  Op = "journal"
	OpVerify   Op = "verify"
	OpLive     Op = "live"
	// Operators' actions (Actions).
	OpApprove       Op = "approve"
	OpCertify       Op = "certify"
	OpPointDecision Op = "restore-point"
	OpRetry         Op = "retry"
	OpMark          Op = "mark"
	OpCleanup       Op = "cleanup"
	// Operators of the dashboard (records hold hashes, never tokens).
	OpOperators      Op = "operators"
	OpPutOperator    Op = "put-operator"
	OpDeleteOperator Op = "delete-operator"
)

// Request is one call.
type Request struct {
	Op       Op     `json:"op"`
	Run      string `json:"run,omitempty"`
	Node     string `json:"node,omitempty"`
	AfterSeq uint64 `json:"after_seq,omitempty"`
	By       string `json:"by,omitempty"`
	Comment  string `json:"comment,omitempty"` // also a mark's reason, a decision's reason, a clean-up's note
	Zone     string `json:"zone,omitempty"`
	// Action and Point are a restore-point decision (engine.PointUse …).
	Action     string `json:"action,omitempty"`
	Point      string `json:"point,omitempty"`
	Downstream bool   `json:"downstream,omitempty"`
	// Operator is the record of OpPutOperator; OpDeleteOperator names it in By.
	Operator *state.Operator `json:"operator,omitempty"`
}

// Frame is one line of an answer.
type Frame struct {
	Entry  *state.Entry    `json:"entry,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Code   string          `json:"code,omitempty"`
	End    bool            `json:"end,omitempty"`
}

// Error codes carried by a Frame, mapped to sentinel errors, the most
// specific first (an error may match several).
var codeList = []struct {
	code     string
	sentinel error
}{
	{"run-not-found", state.ErrRunNotFound},
	{"node-not-found", state.ErrNodeNotFound},
	{"zone-not-found", state.ErrZoneNotFound},
	{"no-run", state.ErrNoRun},
	{"not-waiting", state.ErrNotWaiting},
	{"no-operator", state.ErrOperatorNotFound},
	{"already-approved", state.ErrAlreadyApproved},
	{"tampered", state.ErrTampered},
	{"not-applicable", state.ErrNotApplicable},
}

var codes = func() map[string]error {
	m := make(map[string]error, len(codeList))
	for _, c := range codeList {
		m[c.code] = c.sentinel
	}
	return m
}()

func codeOf(err error) string {
	for _, c := range codeList {
		if errors.Is(err, c.sentinel) {
			return c.code
		}
	}
	return ""
}

// Actions are what an operator does to a run, with who (by) and why.
// engine.Engine implements them over the state file it holds (on the run it
// is running, through its scheduler); Client sends them to the process that
// holds the file.
type Actions interface {
	Approve(ctx context.Context, runID, nodeID, by, comment string) error
	Certify(ctx context.Context, runID, zone, by, comment string) error
	RestorePointDecision(ctx context.Context, runID, nodeID, action, pointID, by, reason string) error
	// ResetNodes puts a node (with downstream, its descendants) back to
	// pending and returns the ids reset; a live run runs them at once.
	ResetNodes(ctx context.Context, runID, nodeID string, downstream bool, by string) ([]string, error)
	Mark(ctx context.Context, runID, nodeID, by, reason string) error
	RecordCleanup(ctx context.Context, runID, by, note string) error
}

// RemoteError is an error answered by the server.
type RemoteError struct {
	Msg      string
	sentinel error
}

func (e *RemoteError) Error() string { return e.Msg }

// Unwrap returns the sentinel error the server's code stands for (nil if none).
func (e *RemoteError) Unwrap() error { return e.sentinel }
