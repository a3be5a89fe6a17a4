package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/operate"
)

// The operators' actions (approve, certify, restore-point, mark, cleanup,
// and retry on a run going on) share one path, operate.Do: on a stopped
// run the state file is opened, checked against its journal, written by an
// engine without a plugin host and anchored; on a run going on, the action
// goes through the control socket of the process that runs it, which
// applies it at once.

// actionFlags are the flags every action has: the state file and the
// anchor destination.
type actionFlags struct {
	state  *string
	anchor *string
}

func (f *actionFlags) add(c *cobra.Command) {
	f.state = addStateFlag(c)
	f.anchor = addAnchorFlag(c, "also record the journal head after the action here (a file, appended to, or an http(s) webhook); the journal is checked against it first (env REPRISE_ANCHOR)")
}

// actOn applies fn to run runID of the state file at statePath as the
// process described by who (operate.Do). A failure to anchor is a warning
// on stderr: the action is done.
func actOn(ctx context.Context, statePath, anchorDest, who, runID string, fn func(context.Context, control.Actions) error) (operate.Outcome, error) {
	// On etcd there is no lock: a run a coordinator leads is refused here
	// (approve goes through the coordinator, approveThroughCluster).
	open := func(path, who string) (state.Backend, error) {
		st, err := openStore(path, who)
		if err != nil {
			return nil, err
		}
		if err := refuseLive(st, runID); err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
	}
	out, err := operate.Do(ctx, operate.Options{StatePath: statePath, Holder: who, Anchor: anchorDest,
		Open: open, OpenLog: openLog, Notify: notifyOf}, runID, fn)
	if err == nil && out.AnchorErr != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", out.AnchorErr)
	}
	return out, err
}

// notifyOf hands the graph's notify targets what an action on a stopped
// run does (a zone certified); they are given a few seconds at most to
// deliver when the action is done.
func notifyOf(st state.Backend) (func(engine.Event), func()) {
	h := watchNotify(st, nil)
	return h.onEvent, h.close
}

// printNext says what happens next after an action on run runID: the run
// going on took it (liveNext says what it does now), the process holding
// the file wrote it, or the run goes on at the next resume.
func printNext(w io.Writer, out operate.Outcome, runID, liveNext string) {
	switch {
	case out.Live && out.Holder.PID != 0:
		fmt.Fprintf(w, "run %s is going on (pid %d): %s\n", runID, out.Holder.PID, liveNext)
	case out.Live:
		fmt.Fprintf(w, "run %s is going on: %s\n", runID, liveNext)
	case out.Socket:
		fmt.Fprintf(w, "written by the process that holds the state file (%s, pid %d); continue with `reprise resume %s` once it has ended\n",
			out.Holder.Command, out.Holder.PID, runID)
	default:
		fmt.Fprintf(w, "continue with `reprise resume %s`\n", runID)
	}
}
