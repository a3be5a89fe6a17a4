// Package control serves a running reprise process's state over a unix
// socket beside its state file (STATE.sock, mode 0600), so that `reprise
// status`, `runs`, `log` and `approve` work from another terminal while
// bbolt's exclusive lock keeps them out of the file itself.
//
// The protocol is JSON lines: the client writes one Request and reads
// Frames until one has End set. A journal answer streams one Frame per
// entry before the end. On any failure the server answers with Error (and a
// Code that the client maps back to the state package's sentinel errors);
// a crashed server leaves a stale socket file, which the next server removes
// (it holds the state file's lock, so no other server can be using it).
package control

import (
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
	OpApprove  Op = "approve"
	OpLive     Op = "live"
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
	Comment  string `json:"comment,omitempty"`
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

// Error codes carried by a Frame, mapped to sentinel errors.
var codes = map[string]error{
	"run-not-found":    state.ErrRunNotFound,
	"node-not-found":   state.ErrNodeNotFound,
	"no-run":           state.ErrNoRun,
	"not-waiting":      state.ErrNotWaiting,
	"no-operator":      state.ErrOperatorNotFound,
	"already-approved": state.ErrAlreadyApproved,
}

func codeOf(err error) string {
	for c, sentinel := range codes {
		if errors.Is(err, sentinel) {
			return c
		}
	}
	return ""
}

// RemoteError is an error answered by the server.
type RemoteError struct {
	Msg      string
	sentinel error
}

func (e *RemoteError) Error() string { return e.Msg }

// Unwrap returns the sentinel error the server's code stands for (nil if none).
func (e *RemoteError) Unwrap() error { return e.sentinel }
