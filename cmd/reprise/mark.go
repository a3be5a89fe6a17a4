package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/operate"
)

// operatorName is who runs the command, for the journal: $REPRISE_OPERATOR,
// else $USER, else "operator".
func operatorName() string {
	for _, k := range []string{"REPRISE_OPERATOR", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "operator"
}

// markOptions are what mark needs.
type markOptions struct {
	State, Anchor string
	Run, Node     string
	By, Reason    string
}

// runMark marks node Node of run Run done (operate.Do).
func runMark(ctx context.Context, o markOptions) (operate.Outcome, error) {
	return actOn(ctx, o.State, o.Anchor, holder("mark", o.Run, o.Node), o.Run, func(ctx context.Context, a control.Actions) error {
		return a.Mark(ctx, o.Run, o.Node, o.By, o.Reason)
	})
}

func newMarkCmd() *cobra.Command {
	var done, quiet bool
	var o markOptions
	var f actionFlags
	c := &cobra.Command{
		Use:   "mark RUN NODE --done --reason TEXT",
		Short: "Record an operator's override: a node is done although its step did not succeed",
		Long: `Mark a node done (succeeded) by hand, for a reason that the journal keeps with
who and when: for a step restored outside reprise, or a failure judged
harmless. On a run going on (in another terminal, or started from the
dashboard) the mark reaches it through its control socket: the nodes the
failure blocked go back to pending and the dependents start at once (a node
whose step is running is refused); on an etcd state, through etcd to the
coordinator leading the run, from any machine (once the state has operators,
with an operator's token in REPRISE_TOKEN or REPRISE_TOKEN_FILE, also when
no coordinator leads and it is written to the etcd state here). On a
stopped run its dependents run at the next resume.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if !done {
				return usageError("mark: --done is required (the only override there is)")
			}
			if o.Reason == "" {
				return usageError("mark: --reason is required: say why, the journal keeps it")
			}
			if o.By == "" {
				o.By = operatorName()
			}
			o.Run, o.Node, o.State, o.Anchor = args[0], args[1], *f.state, *f.anchor
			// On etcd, a coordinator leading the run applies it (from any machine).
			cmd := cluster.Command{Op: cluster.CmdMark, Run: o.Run, Node: o.Node, By: commandBy(c, o.By), Comment: o.Reason}
			got, sent, err := sendThroughCluster(c, clusterOf(os.Getenv("REPRISE_CLUSTER"), o.State), cmd)
			if err != nil {
				return err
			}
			if sent {
				o.By = got.By
			}
			out := operate.Outcome{Live: true}
			if !sent {
				// No coordinator took it: written here, as a coordinator
				// would decide (authorizeDirect).
				if o.By, err = authorizeDirect(o.State, cmd, o.By); err != nil {
					return err
				}
				if out, err = runMark(c.Context(), o); err != nil {
					return err
				}
			}
			if quiet {
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s of run %s marked done by %s: %s\n", o.Node, o.Run, o.By, o.Reason)
			printNext(c.OutOrStdout(), out, o.Run, "the nodes that wait for it start now")
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVar(&done, "done", false, "mark the node done (succeeded)")
	c.Flags().StringVar(&o.Reason, "reason", "", "why (required; kept in the journal)")
	c.Flags().StringVar(&o.By, "by", "", "who decides (default: $USER)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return c
}
