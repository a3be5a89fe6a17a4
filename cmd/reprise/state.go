package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// defaultStatePath is the state file used without --state or REPRISE_STATE.
const defaultStatePath = "reprise.db"

// addStateFlag adds --state (default $REPRISE_STATE, else ./reprise.db).
func addStateFlag(c *cobra.Command) *string {
	def := os.Getenv("REPRISE_STATE")
	if def == "" {
		def = defaultStatePath
	}
	addEtcdTLSFlags(c)
	return c.Flags().String("state", def, "state file, or etcd://HOST:PORT[,HOST:PORT…]/PREFIX (env REPRISE_STATE)")
}

// holder describes this process to a second opener of the state file.
func holder(args ...string) string {
	return "reprise " + strings.Join(args, " ")
}

// openStore opens the state file for writing. The whole file is checked
// before the session's first write, not at open: a session that writes
// nothing (the resume of a finished run) does not read every page.
func openStore(path, who string) (state.Backend, error) {
	if etcdconn.IsURL(path) {
		return openEtcd(path, false)
	}
	if warn, err := state.CheckDir(path); err == nil && warn != "" {
		fmt.Fprintln(os.Stderr, warn)
	}
	st, err := state.Open(path, state.Options{Holder: who, NoSync: os.Getenv("REPRISE_UNSAFE_NOSYNC") == "1",
		CheckOnFirstWrite: true})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// reader is what status, runs and log read: the state file itself, or the
// control socket of the process that holds it (control.Reader).
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
	_ reader = (*control.Reader)(nil)
)

// openReader opens the state file for reading with control.Open (the file,
// or the control socket of the running reprise that holds it) and prints
// what it says of the file's folder. live is the run that process is
// running ("" if none or if reading the file).
func openReader(path string) (r reader, live string, closeFn func(), err error) {
	if etcdconn.IsURL(path) {
		st, err := openEtcd(path, true)
		if err != nil {
			return nil, "", nil, err
		}
		return st, etcdLive(st), func() { st.Close() }, nil
	}
	cr, err := control.Open(path)
	if errors.Is(err, control.ErrNoStateFile) {
		return nil, "", nil, fmt.Errorf("no state file at %s: nothing has run here yet (use --state or REPRISE_STATE to name another)", path)
	}
	if err != nil {
		return nil, "", nil, err
	}
	if w := cr.Warning(); w != "" {
		fmt.Fprintln(os.Stderr, w)
	}
	return cr, cr.Live(), func() { cr.Close() }, nil
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
