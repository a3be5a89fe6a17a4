package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/internal/operate"
)

// restorePointOptions are what restore-point needs.
type restorePointOptions struct {
	State, Anchor string
	Run, Node     string
	Action, Point string // engine.PointUse or engine.PointExclude, and the point's id
	By, Reason    string
}

// runRestorePoint records the decision (operate.Do), on an etcd state
// with operators with an admin's token (authorizeState).
func runRestorePoint(ctx context.Context, o restorePointOptions) (operate.Outcome, error) {
	by, err := authorizeState(o.State, fmt.Sprintf("restore-point %s %s", o.Run, o.Node), actRestorePoint, o.By)
	if err != nil {
		return operate.Outcome{}, err
	}
	o.By = by
	return actOn(ctx, o.State, o.Anchor, holder("restore-point", o.Run, o.Node), o.Run, func(ctx context.Context, a control.Actions) error {
		return a.RestorePointDecision(ctx, o.Run, o.Node, o.Action, o.Point, o.By, o.Reason)
	})
}

func newRestorePointCmd() *cobra.Command {
	var use, exclude string
	var o restorePointOptions
	var f actionFlags
	c := &cobra.Command{
		Use:   "restore-point RUN NODE (--use ID | --exclude ID) --by NAME --reason TEXT",
		Short: "Decide which restore point a node uses: use one whatever its verdict, or exclude one",
		Long: `Record an operator's decision on a restore point of node NODE in run RUN,
journaled with who and why:
  --use ID      restore from point ID, whatever its scan verdict, even if it was
                taken after the incident was detected (it is still scanned, and
                its verdict journaled);
  --exclude ID  never restore from point ID.
A node waiting on a suspicious point goes back to pending: on a run going on
(through its control socket) it starts again at once, on a stopped run at
the next resume. A node already restored is refused (retry it to restore
again), and so is a node whose step is running. On an etcd state that has
operators, it needs an admin's token (REPRISE_TOKEN, REPRISE_TOKEN_FILE),
and --by must name that admin.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("restore-point: want RUN and NODE, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			o.Action, o.Point = engine.PointUse, use
			switch {
			case use != "" && exclude != "":
				return usageError("restore-point: give --use or --exclude, not both")
			case exclude != "":
				o.Action, o.Point = engine.PointExclude, exclude
			case use == "":
				return usageError("restore-point: --use ID or --exclude ID is required")
			}
			if strings.TrimSpace(o.By) == "" {
				return usageError("restore-point: --by NAME is required: the journal records who decided")
			}
			if strings.TrimSpace(o.Reason) == "" {
				return usageError("restore-point: --reason TEXT is required: say why, the journal keeps it")
			}
			o.Run, o.Node, o.State, o.Anchor = args[0], args[1], *f.state, *f.anchor
			out, err := runRestorePoint(c.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s of run %s: %s restore point %s (by %s)\n", o.Node, o.Run, o.Action, o.Point, o.By)
			printNext(c.OutOrStdout(), out, o.Run, "the node follows the decision when it chooses its point")
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&use, "use", "", "restore from this point whatever its verdict")
	c.Flags().StringVar(&exclude, "exclude", "", "never restore from this point")
	c.Flags().StringVar(&o.By, "by", "", "who decides (required; kept in the journal)")
	c.Flags().StringVar(&o.Reason, "reason", "", "why (required; kept in the journal)")
	return c
}
