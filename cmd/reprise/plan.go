package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/graphs"
)

// planOptions are the options of `reprise plan FILE`.
type planOptions struct {
	// File is the graph file.
	File string
	// Targets keeps only these nodes and what they depend on (--target).
	Targets []string
	// Parallelism is how many nodes run at once, for the estimate (1 or
	// more).
	Parallelism int
	// JSON asks for one JSON object (the command prints it).
	JSON bool
}

func newPlanCmd() *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the restore order: waves, criticality, critical path and estimated duration",
		Long: `Show the restore order of a graph: the waves (nodes that can run together),
each node's effective criticality (the highest of its own and of everything
that depends on it), the critical path by estimate and the estimated total
duration at --parallelism. --target keeps the targets and what they depend on.
--json prints one object (schema: graphs/PLAN_JSON.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			p, err := runPlan(cmd.Context(), opts)
			if err != nil {
				return reportGraphError(cmd.ErrOrStderr(), err)
			}
			if opts.JSON {
				err = p.WriteJSON(cmd.OutOrStdout())
			} else {
				err = p.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return withCode(exitError, err)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&opts.Targets, "target", nil, "plan only this node and what it depends on (repeatable)")
	cmd.Flags().IntVar(&opts.Parallelism, "parallelism", 8, "how many nodes run at once, for the estimate")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the plan as one JSON object")
	return cmd
}

// runPlan loads the graph opts.File, cut to opts.Targets, and plans it:
// waves, effective criticality, critical path and the estimated duration
// at opts.Parallelism. A graph with problems returns its
// *graphs.ValidationError (reportGraphError prints it).
func runPlan(_ context.Context, opts planOptions) (*graphs.Plan, error) {
	tuneGCForGraphs(opts.File)
	if opts.Parallelism < 1 {
		return nil, usageError("--parallelism %d: want 1 or more", opts.Parallelism)
	}
	g, err := loadGraph(opts.File, opts.Targets)
	if err != nil {
		return nil, err
	}
	g.File = opts.File
	return graphs.NewPlan(g, opts.Targets, opts.Parallelism), nil
}
