package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

// defaultStatePath is the state file used without --state or REPRISE_STATE.
const defaultStatePath = "reprise.db"

// addStateFlag adds --state (default $REPRISE_STATE, else ./reprise.db).
func addStateFlag(c *cobra.Command) *string {
	def := os.Getenv("REPRISE_STATE")
	if def == "" {
		def = defaultStatePath
	}
	return c.Flags().String("state", def, "state file (env REPRISE_STATE)")
}

// holder describes this process to a second opener of the state file.
func holder(args ...string) string {
	return "reprise " + strings.Join(args, " ")
}

// openStore opens the state file for writing.
func openStore(path, who string) (*state.Store, error) {
	if warn, err := state.CheckDir(path); err == nil && warn != "" {
		fmt.Fprintln(os.Stderr, warn)
	}
	st, err := state.Open(path, state.Options{Holder: who, NoSync: os.Getenv("REPRISE_UNSAFE_NOSYNC") == "1"})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// reader is what status, runs and log read: the state file itself, or the
// control socket of the process that holds it.
type reader interface {
	Run(id string) (state.Run, error)
	Runs() ([]state.Run, error)
	LatestUnfinished() (state.Run, error)
	Nodes(runID string) ([]state.NodeRecord, error)
	Snapshot(runID string) ([]byte, error)
	Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error
	Verify(runID string) (state.VerifyReport, error)
}

var (
	_ reader = (*state.Store)(nil)
	_ reader = (*control.Client)(nil)
)

// readerWait is how long a reader keeps trying to read a state file that
// a writer holds while its socket is not there: a run opening the file
// before its socket is up, or closing it after its socket went away.
const readerWait = 3 * time.Second

// openReader opens the state file read-only; when a running reprise holds
// it, it reads through that process's control socket instead, and falls
// back to the file when the socket goes away in the middle (the run has
// ended). live is the run that process is running ("" if none or if
// reading the file).
func openReader(path string) (r reader, live string, closeFn func(), err error) {
	if _, serr := os.Lstat(path); errors.Is(serr, os.ErrNotExist) {
		return nil, "", nil, fmt.Errorf("no state file at %s: nothing has run here yet (use --state or REPRISE_STATE to name another)", path)
	}
	if warn, err := state.CheckDir(path); err != nil {
		return nil, "", nil, err
	} else if warn != "" {
		fmt.Fprintln(os.Stderr, warn)
	}
	deadline := time.Now().Add(readerWait)
	for {
		st, err := state.Open(path, state.Options{ReadOnly: true})
		if err == nil {
			return st, "", func() { st.Close() }, nil
		}
		var locked *state.LockedError
		if !errors.As(err, &locked) {
			return nil, "", nil, err
		}
		c, cerr := control.Dial(control.SocketPath(path))
		if cerr == nil {
			live, _ = c.Live()
			lr := &liveReader{c: c, path: path}
			return lr, live, lr.close, nil
		}
		if errors.Is(cerr, control.ErrUntrustedServer) || time.Now().After(deadline) {
			return nil, "", nil, fmt.Errorf("%w; and its control socket does not answer: %v", err, cerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveReader reads through a running reprise's control socket; once the
// socket stops answering (the run ended and closed it), it reads the file.
type liveReader struct {
	c    *control.Client
	path string
	st   *state.Store
}

var _ reader = (*liveReader)(nil)

func (l *liveReader) close() {
	if l.st != nil {
		l.st.Close()
	}
}

// fallback reports whether err is the socket going away (not an answer of
// the server), and if so opens the file read-only for the caller to retry.
func (l *liveReader) fallback(err error) bool {
	var remote *control.RemoteError
	if err == nil || errors.As(err, &remote) || errors.Is(err, control.ErrUntrustedServer) || l.st != nil {
		return false
	}
	deadline := time.Now().Add(readerWait)
	for {
		st, oerr := state.Open(l.path, state.Options{ReadOnly: true})
		if oerr == nil {
			l.st = st
			return true
		}
		var locked *state.LockedError
		if !errors.As(oerr, &locked) || time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *liveReader) src() reader {
	if l.st != nil {
		return l.st
	}
	return l.c
}

func (l *liveReader) Run(id string) (state.Run, error) {
	v, err := l.src().Run(id)
	if l.fallback(err) {
		return l.st.Run(id)
	}
	return v, err
}

func (l *liveReader) Runs() ([]state.Run, error) {
	v, err := l.src().Runs()
	if l.fallback(err) {
		return l.st.Runs()
	}
	return v, err
}

func (l *liveReader) LatestUnfinished() (state.Run, error) {
	v, err := l.src().LatestUnfinished()
	if l.fallback(err) {
		return l.st.LatestUnfinished()
	}
	return v, err
}

func (l *liveReader) Nodes(runID string) ([]state.NodeRecord, error) {
	v, err := l.src().Nodes(runID)
	if l.fallback(err) {
		return l.st.Nodes(runID)
	}
	return v, err
}

func (l *liveReader) Snapshot(runID string) ([]byte, error) {
	v, err := l.src().Snapshot(runID)
	if l.fallback(err) {
		return l.st.Snapshot(runID)
	}
	return v, err
}

// Journal goes on from the last entry it passed to fn when it falls back.
func (l *liveReader) Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error {
	var fnErr error
	err := l.src().Journal(runID, afterSeq, func(e state.Entry) error {
		if fnErr = fn(e); fnErr != nil {
			return fnErr
		}
		afterSeq = e.Seq
		return nil
	})
	if fnErr == nil && l.fallback(err) {
		return l.st.Journal(runID, afterSeq, fn)
	}
	return err
}

func (l *liveReader) Verify(runID string) (state.VerifyReport, error) {
	v, err := l.src().Verify(runID)
	if l.fallback(err) {
		return l.st.Verify(runID)
	}
	return v, err
}

// openRun opens the state file at path as openReader does and picks the
// run of a `[RUN]` argument with pickRun: args[0] when given, else the
// latest unfinished run, else the newest one. On success the caller must
// call closeFn; on error nothing is left open.
func openRun(path string, args []string) (r reader, run state.Run, live string, closeFn func(), err error) {
	r, live, closeFn, err = openReader(path)
	if err != nil {
		return nil, state.Run{}, "", nil, err
	}
	id := ""
	if len(args) == 1 {
		id = args[0]
	}
	run, err = pickRun(r, id)
	if err != nil {
		closeFn()
		return nil, state.Run{}, "", nil, err
	}
	return r, run, live, closeFn, nil
}

// pickRun returns the run named id, or without id the latest unfinished
// run, else the newest one.
func pickRun(r reader, id string) (state.Run, error) {
	if id != "" {
		return runByID(r, id)
	}
	run, err := r.LatestUnfinished()
	if err == nil {
		return run, nil
	}
	if !errors.Is(err, state.ErrNoRun) {
		return run, err
	}
	return newestOf(r)
}

// runByID returns run id; its error (which names the run) says where to
// find the ids.
func runByID(r reader, id string) (state.Run, error) {
	run, err := r.Run(id)
	if err != nil {
		return run, fmt.Errorf("%w (list them with `reprise runs`)", err)
	}
	return run, nil
}

// newestOf returns the newest run of the state file, or an error saying
// the file has no run yet.
func newestOf(r reader) (state.Run, error) {
	runs, err := r.Runs()
	if err != nil {
		return state.Run{}, err
	}
	if len(runs) == 0 {
		return state.Run{}, errors.New("no run in this state file yet")
	}
	return runs[0], nil
}
