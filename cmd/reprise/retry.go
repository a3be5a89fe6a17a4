package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
)

func init() { register("retry", newRetryCmd) }

func newRetryCmd() *cobra.Command {
	var f runFlags
	var downstream bool
	var by string
	c := &cobra.Command{
		Use:   "retry RUN NODE",
		Short: "Run a node again (and with --downstream everything after it), then resume the run",
		Long: `Reset a node to pending (with --downstream, its descendants too: succeeded
ones run again), journal the reset, and resume the run. Exit codes as for run.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			runID, node := args[0], args[1]
			if by == "" {
				by = operatorName()
			}
			return resumeRun(c, f, runID, "retry", func(ctx context.Context, e *engine.Engine, id string) (engine.Result, error) {
				return e.Retry(ctx, id, node, downstream, by)
			}, nil)
		},
	}
	f.add(c)
	c.Flags().BoolVar(&downstream, "downstream", false, "also run again every node that depends on it")
	c.Flags().StringVar(&by, "by", "", "who asks for the retry (default: $USER)")
	return c
}
