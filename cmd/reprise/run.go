package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// runOptions are the options of `reprise run FILE`, from its flags and
// argument.
type runOptions struct {
	sessionOptions
	// File is the graph file.
	File string
	// Targets runs only these nodes and their ancestors (--target).
	Targets []string
	// DryRun validates and checks every node and writes nothing.
	DryRun bool
	// Drill runs the graph as a drill (--drill).
	Drill bool
	// New starts a new run even if one of the same graph is unfinished.
	New bool
	// Converge asks every node's Check before its Restore (--check).
	Converge bool
}

// runOutcome is what a run session did: the run's result, or with
// --dry-run the plan, which the command prints.
type runOutcome struct {
	Result engine.Result
	// Plan is run --dry-run's plan.
	Plan *dryRunPlan
	// Edit is resume --graph's plan of the edit, and EditRun the run it
	// edits (resume --graph --dry-run prints them).
	Edit    *engine.EditPlan
	EditRun state.Run
}

func newRunCmd() *cobra.Command {
	var f runFlags
	var opts runOptions
	c := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a graph: restore every node through its plugin, with durable state",
		Long: `Run a graph: restore every node through its plugin, dependencies first, most
critical first, keeping every transition in the state file so that the run
can be resumed after any interruption.

--drill runs the graph as a drill: an exercise on the real plan, which
hospitals must rehearse. The run is recorded as a drill, every step request
says so (plugins restore into the exercise environment; exec commands get
REPRISE_DRILL=1), and once the exercise environment has been cleaned up,
` + "`reprise cleanup RUN --by NAME --note TEXT`" + ` records who did what; a
cleaned-up drill cannot be resumed. With --dry-run, the plugins are told it
is a drill too.

--check converges on a half-rebuilt site (restored by hand, or by another
tool): every node's Check is asked before its Restore, and a node found
restored is recorded so (a "restored" journal entry, with Check's outputs,
after its Verify) and not restored again. A resume of that run keeps
converging.

A state file holding an unfinished run of a graph of the same name refuses a
new run (exit 2), naming that run: ` + "`reprise resume`" + ` continues it, --new starts
a fresh run anyway (its journal says which run was left unfinished).

On an etcd state that has operators, run (and resume) need the token of an
operator who may resume (REPRISE_TOKEN, or the file REPRISE_TOKEN_FILE
names); the journal names that operator as who started (or resumed) the run.
A --standby checks that token again when it takes over: if its operator was
revoked, given a new token or lowered below operator meanwhile, it exits 1,
writes nothing and gives the lead up. While it leads the run, a coordinator
(run, resume, retry) watches the operators in etcd: once its operator is
revoked, given a new token or lowered, it journals coordinator-stopped naming
them, starts nothing new, cancels its running steps (as a second SIGINT),
gives the lead up and exits 130; another operator's resume goes on. A coordinator taking over a run (a
standby, resume, retry) refuses work left in etcd by another protocol
version, naming the versions and what to do (exit 1).

Exit codes: 0 all nodes succeeded, 1 error, 2 usage, 3 finished with failed or
blocked nodes, 4 parked on manual gates, 130 interrupted (SIGINT, SIGTERM or
SIGHUP, a closed terminal: the first lets running steps finish, the second
cancels them).`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.sessionOptions, opts.File = f.options(c), args[0]
			std := stdioOf(c)
			out, err := runRun(c.Context(), opts, std)
			err = printProblems(std.Err, err)
			if opts.DryRun {
				if err != nil {
					return err
				}
				return printDryRun(std.Out, out.Plan, opts.JSON)
			}
			if err == nil {
				err = printOutcome(std.Out, out.Result, opts.JSON)
			}
			if opts.Drill && out.Result.RunID != "" {
				fmt.Fprintf(std.Err, "drill %s: when the exercise is over and its environment cleaned up, record it: `reprise cleanup %s --by NAME --note TEXT`\n", out.Result.RunID, out.Result.RunID)
			}
			return err
		},
	}
	f.add(c)
	c.Flags().StringSliceVarP(&opts.Targets, "target", "t", nil, "run only this node and its ancestors (repeatable)")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "validate and check every node, print what would run, write nothing")
	c.Flags().BoolVar(&opts.Converge, "check", false, "converge on a half-rebuilt site: ask every node's Check before its Restore; a node found restored is recorded so, with Check's outputs, and not restored")
	c.Flags().BoolVar(&opts.New, "new", false, "start a new run even if a run of the same graph is unfinished (resume continues that one)")
	c.Flags().BoolVar(&opts.Drill, "drill", false, "run as a drill: an exercise on the real plan, plugins restore into the exercise environment (REPRISE_DRILL=1); then record its clean-up with reprise cleanup")
	return c
}

// runRun runs the graph opts.File to its end (or, with opts.DryRun, plans
// it and writes nothing): it loads and checks the graph, refuses a second
// run of a graph whose run is unfinished (unless opts.New), and runs every
// node under the operator's signals, with progress and notes on std.Err.
// The outcome's status says how the run ended; the error is for a run that
// could not be run or recorded (a usage error for bad options or an
// unfinished run, a *problemsError for unusable scanners).
func runRun(ctx context.Context, opts runOptions, std stdio) (runOutcome, error) {
	if err := opts.check(); err != nil {
		return runOutcome{}, err
	}
	g, err := graphs.Load(opts.File)
	if err != nil {
		return runOutcome{}, err
	}
	if probs := validateScanners(ctx, g); len(probs) > 0 {
		return runOutcome{}, &problemsError{file: opts.File, problems: probs}
	}
	eo := opts.engineOptions()
	eo.Targets, eo.Drill, eo.Converge = opts.Targets, opts.Drill, opts.Converge
	if opts.Drill {
		fmt.Fprintf(std.Err, "DRILL: an exercise on the real plan of %s; plugins are told to restore into the exercise environment (REPRISE_DRILL=1)\n", g.Name)
	}
	if opts.DryRun {
		plan, err := dryRunGraph(ctx, g, eo)
		return runOutcome{Plan: plan}, err
	}
	// On an etcd state with operators, an operator's token, checked
	// before anything is written (the election included): a standby
	// checks it at its start, and again when it takes over.
	sa, err := authorizeSession(opts.StatePath, "run "+opts.File, actRun, "")
	if err != nil {
		return runOutcome{}, err
	}
	eo.By = sa.by
	co, err := dialCluster(ctx, opts.Cluster, opts.StatePath)
	if err != nil {
		return runOutcome{}, err
	}
	if err := co.elect(ctx, std.Err, g.Name, "run "+opts.File); err != nil {
		co.close()
		return runOutcome{}, err
	}
	s, err := openSession(opts.StatePath, holder("run", opts.File))
	if err != nil {
		co.close()
		return runOutcome{}, err
	}
	s.co, s.auth = co, sa
	defer s.close()
	prev, err := unfinishedOf(s.st, g.Name, opts.Drill)
	if err != nil {
		return runOutcome{}, err
	}
	if co != nil && co.tookOver {
		// A standby that waited: its operator may have been revoked
		// meanwhile. Decided before it writes anything.
		target, runID := "a new run of graph "+g.Name, ""
		if prev != nil {
			target, runID = fmt.Sprintf("run %s of graph %s", prev.ID, g.Name), prev.ID
		}
		if err := sa.recheck(target, runID); err != nil {
			return runOutcome{}, err
		}
		eo.By = sa.by
	}
	if prev != nil && opts.Cluster.standby {
		// A standby goes on with the run its leader left: resume
		// semantics, nothing completed runs again.
		return s.takeOver(ctx, opts.sessionOptions, eo, *prev, std)
	}
	if prev != nil && !opts.New {
		return runOutcome{}, withCode(exitUsage, fmt.Errorf("run %s of %s is unfinished (%s, %s): `reprise resume %s` continues it; `reprise run --new %s` starts a fresh run anyway",
			prev.ID, prev.GraphName, prev.Status, progressOf(s.st, *prev), prev.ID, opts.File))
	}
	if prev != nil {
		eo.StartNote = fmt.Sprintf("started while run %s was unfinished (%s, %s)", prev.ID, prev.Status, progressOf(s.st, *prev))
		fmt.Fprintf(std.Err, "note: %s; a new run starts (--new)\n", eo.StartNote)
	}
	if err := s.start(opts.sessionOptions, eo, std.Err); err != nil {
		return runOutcome{}, err
	}
	res, err := s.do(ctx, func(ctx context.Context) (engine.Result, error) { return s.eng.Start(ctx, g) })
	return runOutcome{Result: res}, s.end(res, err)
}

// problemsError is returned when a graph's nodes or scanners have problems
// that keep it from running; the command prints each on stderr (exit 1).
type problemsError struct {
	file     string
	problems []host.NodeProblem
}

func (e *problemsError) Error() string {
	return fmt.Sprintf("%s: %d problem(s)", e.file, len(e.problems))
}

// print writes each problem on w as FILE:LINE:COL: message.
func (e *problemsError) print(w io.Writer) {
	for _, p := range e.problems {
		fmt.Fprintf(w, "%s:%s\n", e.file, p.String())
	}
}

// unfinishedOf returns the newest unfinished run (one resume would
// continue: running or crashed, interrupted, parked or failed; not a drill
// cleaned up) of graph name, or nil. Drills and real runs are apart: a drill
// may rehearse while a real run waits, and the other way round.
func unfinishedOf(st state.Backend, name string, drill bool) (*state.Run, error) {
	runs, err := st.Runs()
	if err != nil {
		return nil, err
	}
	for i := range runs {
		r := runs[i]
		if r.GraphName == name && r.Options.Drill == drill && r.Unfinished() {
			return &r, nil // Runs is newest first
		}
	}
	return nil, nil
}

// progressOf says how far run got: "12/39 nodes done".
func progressOf(st state.Backend, run state.Run) string {
	recs, err := st.Nodes(run.ID)
	if err != nil {
		return fmt.Sprintf("%d nodes", run.Total)
	}
	done := 0
	for _, r := range recs {
		if r.State.Done() {
			done++
		}
	}
	return fmt.Sprintf("%d/%d nodes done", done, len(recs))
}
