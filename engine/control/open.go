package control

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// ErrNoStateFile is returned by Open when there is no file at the path:
// nothing has run there yet.
var ErrNoStateFile = errors.New("no state file")

// readerWait is how long Open and a Reader keep trying to read a state file
// that a writer holds while its socket is not there: a run opening the file
// before its socket is up, or closing it after its socket went away.
const readerWait = 3 * time.Second

// Reader reads a state file without writing: the file itself, opened
// read-only, or, while a running reprise holds the file's lock, that
// process's control socket. When the socket goes away in the middle (the
// run has ended), the Reader falls back to the file, and a Journal call
// goes on from the last entry it passed. A Reader is used by one goroutine;
// Close releases the file.
type Reader struct {
	path string
	c    *Client      // the socket, while it answers
	st   *state.Store // the file, from the start or after the fallback
	live string       // the run the serving process runs
	warn string       // what state.CheckDir said of the file's folder
}

// Open opens the state file at path for reading: read-only when no process
// holds it, else through the control socket of the process that does
// (SocketPath). It waits a little for a socket that is not up yet. The
// errors: ErrNoStateFile, the folder refused by state.CheckDir, a corrupt
// file, or a file held by a process whose socket does not answer (or
// answers as another user: ErrUntrustedServer).
func Open(path string) (*Reader, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoStateFile)
	}
	warn, err := state.CheckDir(path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(readerWait)
	for {
		st, err := state.Open(path, state.Options{ReadOnly: true})
		if err == nil {
			return &Reader{path: path, st: st, warn: warn}, nil
		}
		var locked *state.LockedError
		if !errors.As(err, &locked) {
			return nil, err
		}
		c, cerr := Dial(SocketPath(path))
		if cerr == nil {
			live, _ := c.Live()
			return &Reader{path: path, c: c, live: live, warn: warn}, nil
		}
		if errors.Is(cerr, ErrUntrustedServer) || time.Now().After(deadline) {
			return nil, fmt.Errorf("%w; and its control socket does not answer: %v", err, cerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Live returns the run the process serving the socket is running ("" when
// reading the file, or when that process runs nothing).
func (r *Reader) Live() string { return r.live }

// Warning returns what is worth telling about the state file's folder
// (state.CheckDir), or "".
func (r *Reader) Warning() string { return r.warn }

// Close releases the state file, if the Reader opened it.
func (r *Reader) Close() error {
	if r.st != nil {
		return r.st.Close()
	}
	return nil
}

// fallback reports whether err is the socket going away (not an answer of
// the server), and if so opens the file read-only for the caller to retry.
func (r *Reader) fallback(err error) bool {
	var remote *RemoteError
	if err == nil || r.st != nil || errors.As(err, &remote) || errors.Is(err, ErrUntrustedServer) {
		return false
	}
	deadline := time.Now().Add(readerWait)
	for {
		st, oerr := state.Open(r.path, state.Options{ReadOnly: true})
		if oerr == nil {
			r.st = st
			return true
		}
		var locked *state.LockedError
		if !errors.As(oerr, &locked) || time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// source is the state file once open, else the socket.
type source interface {
	Run(id string) (state.Run, error)
	Runs() ([]state.Run, error)
	LatestUnfinished() (state.Run, error)
	Nodes(runID string) ([]state.NodeRecord, error)
	Snapshot(runID string) ([]byte, error)
	Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error
	Verify(runID string) (state.VerifyReport, error)
}

var (
	_ source = (*state.Store)(nil)
	_ source = (*Client)(nil)
	_ source = (*Reader)(nil)
)

func (r *Reader) src() source {
	if r.st != nil {
		return r.st
	}
	return r.c
}

// Run returns one run.
func (r *Reader) Run(id string) (state.Run, error) {
	v, err := r.src().Run(id)
	if r.fallback(err) {
		return r.st.Run(id)
	}
	return v, err
}

// Runs returns every run, newest first.
func (r *Reader) Runs() ([]state.Run, error) {
	v, err := r.src().Runs()
	if r.fallback(err) {
		return r.st.Runs()
	}
	return v, err
}

// LatestUnfinished returns the newest run that may be resumed.
func (r *Reader) LatestUnfinished() (state.Run, error) {
	v, err := r.src().LatestUnfinished()
	if r.fallback(err) {
		return r.st.LatestUnfinished()
	}
	return v, err
}

// Nodes returns the node records of a run.
func (r *Reader) Nodes(runID string) ([]state.NodeRecord, error) {
	v, err := r.src().Nodes(runID)
	if r.fallback(err) {
		return r.st.Nodes(runID)
	}
	return v, err
}

// Snapshot returns a run's graph snapshot.
func (r *Reader) Snapshot(runID string) ([]byte, error) {
	v, err := r.src().Snapshot(runID)
	if r.fallback(err) {
		return r.st.Snapshot(runID)
	}
	return v, err
}

// Journal calls fn for each journal entry of a run after afterSeq, in
// order; after a fallback it goes on from the last entry it passed to fn.
func (r *Reader) Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error {
	var fnErr error
	err := r.src().Journal(runID, afterSeq, func(e state.Entry) error {
		if fnErr = fn(e); fnErr != nil {
			return fnErr
		}
		afterSeq = e.Seq
		return nil
	})
	if fnErr == nil && r.fallback(err) {
		return r.st.Journal(runID, afterSeq, fn)
	}
	return err
}

// Verify checks a run's journal chain.
func (r *Reader) Verify(runID string) (state.VerifyReport, error) {
	v, err := r.src().Verify(runID)
	if r.fallback(err) {
		return r.st.Verify(runID)
	}
	return v, err
}
