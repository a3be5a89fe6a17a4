package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

func newResumeCmd() *cobra.Command {
	var f runFlags
	var opts resumeOptions
	c := &cobra.Command{
		Use:   "resume [RUN]",
		Short: "Continue a run (default: the latest unfinished one) from its stored graph",
		Long: `Continue a run from the graph snapshot stored when it started. Succeeded nodes
stay done; nodes left running by a crash are asked Check and run again only if
not restored; failed and blocked nodes run again; waiting gates wait for
approval.

With --graph, an edited graph replaces the snapshot. The plan of the edit is
printed first (as terraform plan does): added nodes join, removed nodes leave,
a node not done whose step changed takes the new definition, and a node done
whose step changed (plugin, with, depends_on, between) is "changed since done"
and KEPT: nothing completed runs again unless asked, with --rerun-changed (all
of them) or ` + "`reprise retry RUN NODE`" + ` (one). Edits of title, estimate,
criticality, timeout, retries or kind never make anything run again. With
--dry-run the plan is printed and nothing changes (--json: the plan as JSON);
otherwise it is applied and journaled (a graph-changed entry).

Without --parallelism or --fail-fast, the run keeps the values it started with.
Exit codes as for run.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.sessionOptions = f.options(c)
			if len(args) == 1 {
				opts.RunID = args[0]
			}
			std := stdioOf(c)
			out, err := runResume(c.Context(), opts, std)
			if opts.DryRun {
				if err != nil {
					return err
				}
				return printEditPlan(std.Out, out, opts.JSON)
			}
			if err != nil {
				return err
			}
			return printOutcome(std.Out, out.Result, opts.JSON)
		},
	}
	f.add(c)
	c.Flags().StringVar(&opts.GraphFile, "graph", "", "go on with this edited graph file instead of the stored one (its plan is printed first)")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "with --graph: print the plan of the edit (added, removed, changed and kept, to run again, with reasons) and change nothing")
	c.Flags().StringVar(&opts.By, "by", "", "who resumes the run, kept in the journal (the dashboard gives the operator's name; on an etcd state with operators, the token's operator)")
	c.Flags().BoolVar(&opts.RerunChanged, "rerun-changed", false, "with --graph: run again the done nodes whose step changed (default: kept done)")
	return c
}

// editPlanOf computes the plan of resuming run with edited, from what r
// holds.
func editPlanOf(r reader, run state.Run, edited *graphs.Graph, rerunChanged bool) (engine.EditPlan, error) {
	snap, err := r.Snapshot(run.ID)
	if err != nil {
		return engine.EditPlan{}, fmt.Errorf("reload graph of run %s: %w", run.ID, err)
	}
	old, err := graphs.Parse(run.GraphFile, snap)
	if err != nil {
		return engine.EditPlan{}, fmt.Errorf("reload graph snapshot of run %s: %w", run.ID, err)
	}
	recs, err := r.Nodes(run.ID)
	if err != nil {
		return engine.EditPlan{}, err
	}
	return engine.PlanEdit(run, old, edited, recs, rerunChanged), nil
}

// printEditPlan prints the plan of resume --graph --dry-run.
func printEditPlan(w io.Writer, out runOutcome, asJSON bool) error {
	if asJSON {
		return writeJSON(w, out.Edit)
	}
	printEditText(w, out.EditRun, *out.Edit)
	fmt.Fprintln(w, "dry run: nothing was changed")
	return nil
}

// printEditText prints the plan of resuming run with an edited graph.
func printEditText(w io.Writer, run state.Run, plan engine.EditPlan) {
	fmt.Fprintf(w, "plan of resuming run %s of %s with %s:\n%s", run.ID, run.GraphName, plan.Graph, plan.Text())
}

// resumable returns run runID, or without one the latest unfinished run.
func resumable(r reader, path, runID string) (state.Run, error) {
	if runID != "" {
		return runByID(r, runID)
	}
	run, err := r.LatestUnfinished()
	if errors.Is(err, state.ErrNoRun) {
		return run, fmt.Errorf("no unfinished run in %s: nothing to resume (`reprise runs` lists the runs)", path)
	}
	return run, err
}

// resumeOptions are the options of `reprise resume [RUN]`, from its flags
// and argument.
type resumeOptions struct {
	sessionOptions
	// RunID is the run to resume ("": the latest unfinished one).
	RunID string
	// GraphFile is an edited graph that replaces the run's snapshot (--graph).
	GraphFile string
	// DryRun computes the plan of the edit and changes nothing.
	DryRun bool
	// RerunChanged runs again the done nodes whose step changed.
	RerunChanged bool
	// By is who resumes, kept in the run-resumed journal entry (--by; the
	// dashboard gives the operator's name).
	By string
}

// runResume continues run opts.RunID (or the latest unfinished one) from
// its stored graph, or from opts.GraphFile, whose plan of the edit is
// printed first on std.Out (std.Err with JSON); with opts.DryRun it only
// computes that plan (in the outcome) and changes nothing.
func runResume(ctx context.Context, opts resumeOptions, std stdio) (runOutcome, error) {
	if opts.GraphFile == "" && (opts.DryRun || opts.RerunChanged) {
		return runOutcome{}, usageError("resume: --dry-run and --rerun-changed need --graph FILE (the edited graph)")
	}
	var edited *graphs.Graph
	if opts.GraphFile != "" {
		var err error
		if edited, err = graphs.Load(opts.GraphFile); err != nil {
			return runOutcome{}, err
		}
	}
	if opts.DryRun {
		return editPlanAt(opts.StatePath, opts.RunID, edited, opts.RerunChanged)
	}
	// On an etcd state with operators, an operator's token, checked
	// before anything is written (and again by a standby that takes
	// over); its operator is journaled as who resumed.
	sa, err := authorizeSession(opts.StatePath, strings.TrimSpace("resume "+opts.RunID), actRun, opts.By)
	if err != nil {
		return runOutcome{}, err
	}
	return continueRun(ctx, opts.sessionOptions, opts.RunID, "resume", sa, func(ctx context.Context, e *engine.Engine, id string) (engine.Result, error) {
		return e.ResumeWith(ctx, id, engine.ResumeOptions{Graph: edited, RerunChanged: opts.RerunChanged, By: sa.by})
	}, edited, opts.RerunChanged, std)
}

// editPlanAt computes the plan of resuming run runID ("": the latest
// unfinished) of the state file at path with edited, and writes nothing.
func editPlanAt(path, runID string, edited *graphs.Graph, rerunChanged bool) (runOutcome, error) {
	r, _, closeFn, err := openReader(path)
	if err != nil {
		return runOutcome{}, err
	}
	defer closeFn()
	run, err := resumable(r, path, runID)
	if err != nil {
		return runOutcome{}, err
	}
	plan, err := editPlanOf(r, run, edited, rerunChanged)
	if err != nil {
		return runOutcome{}, err
	}
	return runOutcome{Edit: &plan, EditRun: run}, nil
}

// resumeRun is the command side of continueRun for retry: it reads the
// flags, continues the run and prints the outcome.
func resumeRun(c *cobra.Command, f runFlags, runID, verb string, sa *sessionAuth, fn func(context.Context, *engine.Engine, string) (engine.Result, error), edited *graphs.Graph, rerunChanged bool) error {
	std := stdioOf(c)
	out, err := continueRun(c.Context(), f.options(c), runID, verb, sa, fn, edited, rerunChanged, std)
	if err != nil {
		return err
	}
	return printOutcome(std.Out, out.Result, f.json)
}

// continueRun opens a session on the run runID ("": the latest
// unfinished), checks its journal (and the anchors of opts.Anchor), and
// calls fn with it (resume, retry). Without ParallelismSet or FailFastSet
// the run keeps the values it started with. An edited graph's plan is
// printed first on std.Out (std.Err with JSON: stdout holds the outcome).
// In a cluster, before anything is written: a standby that waited for the
// lead decides again whether sa's operator may go on (sessionAuth.recheck),
// and work of another protocol left in etcd under the run refuses the
// takeover (coordinator.checkWork); refused, the lead is given up.
func continueRun(ctx context.Context, opts sessionOptions, runID, verb string, sa *sessionAuth, fn func(context.Context, *engine.Engine, string) (engine.Result, error), edited *graphs.Graph, rerunChanged bool, std stdio) (runOutcome, error) {
	if err := opts.check(); err != nil {
		return runOutcome{}, err
	}
	eo := opts.engineOptions()
	co, err := dialCluster(ctx, opts.Cluster, opts.StatePath)
	if err != nil {
		return runOutcome{}, err
	}
	var s *session
	if co != nil && opts.Cluster.standby {
		s, err = waitForLock(ctx, std.Err, opts.StatePath, holder(verb, runID))
	} else {
		s, err = openSession(opts.StatePath, holder(verb, runID))
	}
	if err != nil {
		co.close()
		return runOutcome{}, err
	}
	s.co, s.auth = co, sa
	defer s.close()
	run, err := resumable(s.st, opts.StatePath, runID)
	if err != nil {
		return runOutcome{}, err
	}
	if err := co.elect(ctx, std.Err, run.GraphName, verb+" "+run.ID); err != nil {
		return runOutcome{}, err
	}
	if co != nil && co.tookOver {
		if err := sa.recheck(fmt.Sprintf("run %s of graph %s", run.ID, run.GraphName), run.ID); err != nil {
			return runOutcome{}, err
		}
	}
	if err := co.checkWork(ctx, run.ID); err != nil {
		return runOutcome{}, err
	}
	if err := checkIntegrity(s.st, opts.StatePath, run.ID, opts.Anchor); err != nil {
		return runOutcome{}, err
	}
	if edited != nil {
		plan, err := editPlanOf(s.st, run, edited, rerunChanged)
		if err != nil {
			return runOutcome{}, err
		}
		w := std.Out
		if opts.JSON {
			w = std.Err // stdout holds the outcome's JSON
		}
		printEditText(w, run, plan)
	}
	if run.Options.Drill && run.Cleanup == nil {
		fmt.Fprintf(std.Err, "DRILL: run %s of %s is a drill, an exercise on the real plan; plugins are told to restore into the exercise environment (REPRISE_DRILL=1)\n",
			run.ID, run.GraphName)
	}
	if !opts.ParallelismSet && run.Options.Parallelism > 0 {
		eo.Parallelism = run.Options.Parallelism
	}
	if !opts.FailFastSet {
		eo.FailFast = run.Options.FailFast
	}
	if err := s.start(opts, eo, std.Err); err != nil {
		return runOutcome{}, err
	}
	res, err := s.do(ctx, func(ctx context.Context) (engine.Result, error) { return fn(ctx, s.eng, run.ID) })
	return runOutcome{Result: res}, s.end(res, err)
}
