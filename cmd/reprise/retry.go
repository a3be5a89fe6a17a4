package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
)

func newRetryCmd() *cobra.Command {
	var f runFlags
	var downstream, dryRun bool
	var by string
	c := &cobra.Command{
		Use:   "retry RUN NODE",
		Short: "Run a node again (and with --downstream everything after it), and only that",
		Long: `Reset a node to pending (with --downstream, its descendants too: succeeded
ones run again), journal the reset, and run those nodes only: other failed
nodes of the run stay failed and other pending nodes wait (` + "`reprise resume`" + `
runs them). With --dry-run, print the nodes that would run again and change
nothing (--json: as JSON). Exit codes as for run.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			runID, node := args[0], args[1]
			if by == "" {
				by = operatorName()
			}
			if dryRun {
				return printRetryPlan(c, *f.state, runID, node, downstream, f.json)
			}
			return resumeRun(c, f, runID, "retry", func(ctx context.Context, e *engine.Engine, id string) (engine.Result, error) {
				return e.Retry(ctx, id, node, downstream, by)
			}, nil, false)
		},
	}
	f.add(c)
	c.Flags().BoolVar(&downstream, "downstream", false, "also run again every node that depends on it")
	c.Flags().StringVar(&by, "by", "", "who asks for the retry (default: $USER)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the nodes that would run again, change nothing")
	return c
}

// printRetryPlan prints what retry would reset, from the state file opened
// read-only.
func printRetryPlan(c *cobra.Command, path, runID, node string, downstream, asJSON bool) error {
	st, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer st.Close()
	items, err := engine.New(st, nil, engine.Options{}).PlanRetry(runID, node, downstream)
	if err != nil {
		return err
	}
	w := c.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"run": runID, "node": node, "downstream": downstream, "rerun": nonNilItems(items)})
	}
	if len(items) == 0 {
		fmt.Fprintf(w, "retry of %s in run %s: nothing to reset (already pending)\n", node, runID)
	}
	for _, it := range items {
		fmt.Fprintf(w, "  ! %s [%s]: %s\n", it.ID, it.State, it.Reason)
	}
	fmt.Fprintf(w, "dry run: %d node(s) would run again; nothing was changed\n", len(items))
	return nil
}

func nonNilItems(items []engine.EditItem) []engine.EditItem {
	if items == nil {
		return []engine.EditItem{}
	}
	return items
}
