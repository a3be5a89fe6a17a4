package state

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrRunNotFound is returned when no run has the given id.
	ErrRunNotFound = errors.New("run not found")
	// ErrRunExists is returned by CreateRun when a run with that id is already stored.
	ErrRunExists = errors.New("run already exists")
	// ErrNodeNotFound is returned when a run has no node with the given id.
	ErrNodeNotFound = errors.New("node not found")
	// ErrNoRun is returned by LatestUnfinished when no run can be resumed.
	ErrNoRun = errors.New("no unfinished run")
	// ErrClosed is returned when the store is used after Close.
	ErrClosed = errors.New("state store closed")
	// ErrReadOnly is returned when a store opened ReadOnly is asked to write.
	ErrReadOnly = errors.New("state store opened read-only")
	// ErrSchemaVersion is returned by Open when the file was written by a
	// newer reprise whose schema this one does not know.
	ErrSchemaVersion = errors.New("unsupported state schema version")
	// ErrInvalidChange is returned by Apply and CreateRun for a change that
	// cannot be applied (empty ids, a run id that does not match, …).
	ErrInvalidChange = errors.New("invalid change")
	// ErrNotWaiting is returned when a node is approved that is not a gate
	// waiting for approval (its state is not NodeWaiting).
	ErrNotWaiting = errors.New("node is not waiting for approval")
	// ErrNotApplicable is returned when an operator's action does not apply
	// to a run as it stands: a zone not ready for certification, a node
	// whose step is running, a drill already cleaned up, a run that is
	// stopping. The error's message says which; the engine's sentinels of
	// that kind (engine.ErrZoneNotReady …) match it too, so that the control
	// socket carries the kind without knowing the engine.
	ErrNotApplicable = errors.New("action does not apply")
	// ErrZoneNotFound is returned when a run's graph has no trust zone
	// with the given id.
	ErrZoneNotFound = errors.New("zone not found")
)

// LockedError is returned by Open when another opener holds the file: a
// writer excludes everyone, a reader excludes writers.
type LockedError struct {
	Path   string
	Holder Holder // the holder: from its holder file, else from the kernel's lock table; zero if unknown
	// Shared is set when the lock is held by read-only openers (status,
	// log, runs), which let go within moments.
	Shared bool
}

// readersOnly reports whether no writer is known to hold the lock.
func (e *LockedError) readersOnly() bool { return e.Shared || e.Holder.PID == 0 }

// Holder describes the process that holds a state file. It is written as
// JSON to PATH.holder once the lock is taken and removed on Close.
type Holder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"` // Options.Holder, or the program's arguments
	Host    string    `json:"host,omitempty"`
	Since   time.Time `json:"since"`
}

// Error names the file and, when known, the holder: command, pid, host, since when.
func (e *LockedError) Error() string {
	if e.Shared {
		return fmt.Sprintf("state file %s is being read by another process (pid %d: a status, log or runs command); try again when it has finished", e.Path, e.Holder.PID)
	}
	if e.Holder.PID == 0 {
		return fmt.Sprintf("state file %s is in use by another process (holder unknown); try again when it has finished", e.Path)
	}
	since := ""
	if !e.Holder.Since.IsZero() {
		since = " since " + e.Holder.Since.Format(time.RFC3339)
	}
	return fmt.Sprintf("state file %s is in use by %s (pid %d on %s)%s; wait for it to finish or stop it first",
		e.Path, e.Holder.Command, e.Holder.PID, e.Holder.Host, since)
}

// CorruptError is returned when the state file is damaged (truncated,
// overwritten, not a state file at all, a bad page deep inside). Open
// checks every page before a session's first write, so a damaged file is
// refused before anything is written to it.
type CorruptError struct {
	Path string
	Err  error
	// Written is set when this process had already committed changes to
	// the file before the damage was found (damage that appeared during
	// the session); the message then says so instead of "left untouched".
	Written bool
}

// Error names the file and the damage, and says whether the file was touched.
func (e *CorruptError) Error() string {
	if e.Written {
		return fmt.Sprintf("state file %s is damaged: %v; this process had committed changes to it before the damage was found: keep a copy, restore it from a backup, or start again with another --state file", e.Path, e.Err)
	}
	return fmt.Sprintf("state file %s is damaged: %v; it was left untouched: keep a copy, restore it from a backup, or start again with another --state file", e.Path, e.Err)
}

// Unwrap returns the damage found.
func (e *CorruptError) Unwrap() error { return e.Err }

// ErrNoRunYet is returned by a read-only Open of a file that holds no run:
// empty, or left half-made by a creation that was cut short (disk full,
// crash). Opening it for writing rebuilds it.
var ErrNoRunYet = errors.New("holds no run yet")

// ErrTampered is returned when stored data does not match what the run's
// record or journal say of it: changed outside reprise, or damaged.
var ErrTampered = errors.New("does not match the run's journal: the state file was changed outside reprise, or damaged")

// ErrUnsafeDir is returned by Open when the state file's folder can be
// written by other users without the sticky bit (CheckDir).
var ErrUnsafeDir = errors.New("unsafe state folder")

// ErrSymlink is returned when a file of the state family (the state file,
// its .log, .holder or .sock) is a symbolic link: in a folder others can
// write to, following it would let them choose which file reprise writes.
var ErrSymlink = errors.New("is a symbolic link; refusing to follow it (replace it by the file itself)")
