package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

func newResumeCmd() *cobra.Command {
	var f runFlags
	var graphFile string
	var dryRun, rerunChanged bool
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
			runID := ""
			if len(args) == 1 {
				runID = args[0]
			}
			if graphFile == "" && (dryRun || rerunChanged) {
				return usageError("resume: --dry-run and --rerun-changed need --graph FILE (the edited graph)")
			}
			var edited *graphs.Graph
			if graphFile != "" {
				var err error
				if edited, err = graphs.Load(graphFile); err != nil {
					return err
				}
			}
			if dryRun {
				return printEditPlan(c, *f.state, runID, edited, rerunChanged, f.json)
			}
			return resumeRun(c, f, runID, "resume", func(ctx context.Context, e *engine.Engine, id string) (engine.Result, error) {
				return e.ResumeWith(ctx, id, engine.ResumeOptions{Graph: edited, RerunChanged: rerunChanged})
			}, edited, rerunChanged)
		},
	}
	f.add(c)
	c.Flags().StringVar(&graphFile, "graph", "", "go on with this edited graph file instead of the stored one (its plan is printed first)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "with --graph: print the plan of the edit (added, removed, changed and kept, to run again, with reasons) and change nothing")
	c.Flags().BoolVar(&rerunChanged, "rerun-changed", false, "with --graph: run again the done nodes whose step changed (default: kept done)")
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

// printEditPlan prints the plan of resume --graph --dry-run and writes
// nothing.
func printEditPlan(c *cobra.Command, path, runID string, edited *graphs.Graph, rerunChanged, asJSON bool) error {
	r, _, closeFn, err := openReader(path)
	if err != nil {
		return err
	}
	defer closeFn()
	run, err := resumable(r, path, runID)
	if err != nil {
		return err
	}
	plan, err := editPlanOf(r, run, edited, rerunChanged)
	if err != nil {
		return err
	}
	w := c.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	fmt.Fprintf(w, "plan of resuming run %s of %s with %s:\n%s", run.ID, run.GraphName, plan.Graph, plan.Text())
	fmt.Fprintln(w, "dry run: nothing was changed")
	return nil
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

// resumeRun opens a session on the run runID ("": the latest unfinished)
// and calls fn with it (resume, retry).
func resumeRun(c *cobra.Command, f runFlags, runID, verb string, fn func(context.Context, *engine.Engine, string) (engine.Result, error), edited *graphs.Graph, rerunChanged bool) error {
	if f.parallelism < 1 {
		return usageError("--parallelism %d: want at least 1", f.parallelism)
	}
	opts := engine.Options{Parallelism: f.parallelism, FailFast: f.failFast, Wait: f.wait}
	co, err := dialCluster(c.Context(), f.cluster, *f.state)
	if err != nil {
		return err
	}
	var s *session
	if co != nil && f.cluster.standby {
		s, err = waitForLock(c.Context(), c.ErrOrStderr(), *f.state, holder(verb, runID))
	} else {
		s, err = openSession(*f.state, holder(verb, runID))
	}
	if err != nil {
		co.close()
		return err
	}
	s.co = co
	defer s.close()
	run, err := resumable(s.st, *f.state, runID)
	if err != nil {
		return err
	}
	if err := co.elect(c.Context(), c.ErrOrStderr(), run.GraphName, verb+" "+run.ID); err != nil {
		return err
	}
	if err := checkIntegrity(s.st, *f.state, run.ID, *f.anchor); err != nil {
		return err
	}
	if edited != nil {
		plan, err := editPlanOf(s.st, run, edited, rerunChanged)
		if err != nil {
			return err
		}
		w := c.OutOrStdout()
		if f.json {
			w = c.ErrOrStderr() // stdout holds the outcome's JSON
		}
		fmt.Fprintf(w, "plan of resuming run %s of %s with %s:\n%s", run.ID, run.GraphName, plan.Graph, plan.Text())
	}
	if run.Options.Drill && run.Cleanup == nil {
		fmt.Fprintf(c.ErrOrStderr(), "DRILL: run %s of %s is a drill, an exercise on the real plan; plugins are told to restore into the exercise environment (REPRISE_DRILL=1)\n",
			run.ID, run.GraphName)
	}
	if !c.Flags().Changed("parallelism") && run.Options.Parallelism > 0 {
		opts.Parallelism = run.Options.Parallelism
	}
	if !c.Flags().Changed("fail-fast") {
		opts.FailFast = run.Options.FailFast
	}
	if err := s.start(f, opts); err != nil {
		return err
	}
	res, err := s.do(func(ctx context.Context) (engine.Result, error) { return fn(ctx, s.eng, run.ID) })
	return s.finish(c.OutOrStdout(), res, err, f.json)
}
