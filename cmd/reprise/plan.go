package main

import (
	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/graphs"
)

func newPlanCmd() *cobra.Command {
	var targets []string
	var parallelism int
	var asJSON bool
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
			tuneGCForGraphs(args[0])
			if parallelism < 1 {
				return usageError("--parallelism %d: want 1 or more", parallelism)
			}
			g, err := loadGraphForCmd(cmd, args[0], targets)
			if err != nil {
				return err
			}
			g.File = args[0]
			p := graphs.NewPlan(g, targets, parallelism)
			if asJSON {
				if err := p.WriteJSON(cmd.OutOrStdout()); err != nil {
					return withCode(exitError, err)
				}
				return nil
			}
			if err := p.WriteText(cmd.OutOrStdout()); err != nil {
				return withCode(exitError, err)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&targets, "target", nil, "plan only this node and what it depends on (repeatable)")
	cmd.Flags().IntVar(&parallelism, "parallelism", 8, "how many nodes run at once, for the estimate")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as one JSON object")
	return cmd
}
