package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
)

func newRestorePointCmd() *cobra.Command {
	var use, exclude, by, reason string
	var statePath *string
	c := &cobra.Command{
		Use:   "restore-point RUN NODE (--use ID | --exclude ID) --by NAME --reason TEXT",
		Short: "Decide which restore point a node uses: use one whatever its verdict, or exclude one",
		Long: `Record an operator's decision on a restore point of node NODE in run RUN,
journaled with who and why:
  --use ID      restore from point ID, whatever its scan verdict, even if it was
                taken after the incident was detected (it is still scanned, and
                its verdict journaled);
  --exclude ID  never restore from point ID.
A node waiting on a suspicious point goes back to pending: resume the run to
restore it. A node already restored is refused (retry it to restore again).
Not while the run is running.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("restore-point: want RUN and NODE, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			runID, node := args[0], args[1]
			action, point := engine.PointUse, use
			switch {
			case use != "" && exclude != "":
				return usageError("restore-point: give --use or --exclude, not both")
			case exclude != "":
				action, point = engine.PointExclude, exclude
			case use == "":
				return usageError("restore-point: --use ID or --exclude ID is required")
			}
			if strings.TrimSpace(by) == "" {
				return usageError("restore-point: --by NAME is required: the journal records who decided")
			}
			if strings.TrimSpace(reason) == "" {
				return usageError("restore-point: --reason TEXT is required: say why, the journal keeps it")
			}
			if err := withStoppedRun(*statePath, holder("restore-point", runID, node), runID, func(e *engine.Engine) error {
				return e.RestorePointDecision(c.Context(), runID, node, action, point, by, reason)
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s of run %s: %s restore point %s (by %s)\ncontinue with `reprise resume %s`\n",
				node, runID, action, point, by, runID)
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().StringVar(&use, "use", "", "restore from this point whatever its verdict")
	c.Flags().StringVar(&exclude, "exclude", "", "never restore from this point")
	c.Flags().StringVar(&by, "by", "", "who decides (required; kept in the journal)")
	c.Flags().StringVar(&reason, "reason", "", "why (required; kept in the journal)")
	return c
}
