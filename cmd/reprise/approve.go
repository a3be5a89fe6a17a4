package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/operate"
)

// approveOptions are what approve needs.
type approveOptions struct {
	State, Anchor string
	Run, Node     string // Run "": the only unfinished run where gate Node waits
	By, Comment   string
}

// approveResult is where an approval went, and whether the gate still
// waits for another approver (Note says so).
type approveResult struct {
	operate.Outcome
	Run  string
	Note string
}

// runApprove approves gate Node (operate.Do).
func runApprove(ctx context.Context, o approveOptions) (approveResult, error) {
	if o.Run == "" {
		var err error
		if o.Run, err = runWaitingAt(o.State, o.Node); err != nil {
			return approveResult{}, err
		}
	}
	out, err := actOn(ctx, o.State, o.Anchor, holder("approve", o.Run, o.Node), o.Run, func(ctx context.Context, a control.Actions) error {
		return a.Approve(ctx, o.Run, o.Node, o.By, o.Comment)
	})
	if err != nil {
		return approveResult{}, err
	}
	return approveResult{Outcome: out, Run: o.Run, Note: gateNote(o.State, o.Run, o.Node)}, nil
}

func newApproveCmd() *cobra.Command {
	var o approveOptions
	var quiet bool
	var f actionFlags
	var clusterURL *string
	c := &cobra.Command{
		Use:   "approve [RUN] NODE --by NAME [--comment TEXT]",
		Short: "Approve a manual gate: the journal records who, when and why",
		Long: `Approve a manual gate that waits for a human. On a stopped (parked) run the
approval is written to the state file (continue with resume); on a run going
on (--wait, or started from the dashboard) it goes through that process's
control socket, and what follows the gate starts at once; with --cluster (or
an etcd --state), through etcd to the coordinator leading the run (once the
state has operators, with an approver's token in REPRISE_TOKEN or
REPRISE_TOKEN_FILE, also when no coordinator leads and the approval is
written to the etcd state here). Without
RUN, the run where gate NODE waits (refused when several do). A mistyped
NODE gets the nearest id. -q prints nothing on success.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			if o.By == "" {
				return usageError("approve: --by NAME is required: the journal records who approved")
			}
			o.Node, o.State, o.Anchor = args[len(args)-1], *f.state, *f.anchor
			if len(args) == 2 {
				o.Run = args[0]
			} else {
				var err error
				if o.Run, err = runWaitingAt(o.State, o.Node); err != nil {
					return err
				}
			}
			sent, err := approveThroughCluster(c, clusterOf(*clusterURL, o.State), o.Run, o.Node, o.By, o.Comment)
			if err != nil {
				return err
			}
			res := approveResult{Outcome: operate.Outcome{Live: true}, Run: o.Run}
			if sent {
				res.Note = gateNote(o.State, o.Run, o.Node)
			} else {
				// No coordinator took it: written here, as a coordinator
				// would decide (authorizeDirect).
				cmd := cluster.Command{Op: cluster.CmdApprove, Run: o.Run, Node: o.Node, By: o.By, Comment: o.Comment}
				if o.By, err = authorizeDirect(o.State, cmd, o.By); err != nil {
					return err
				}
				if res, err = runApprove(c.Context(), o); err != nil {
					return err
				}
			}
			if quiet {
				return nil
			}
			w := c.OutOrStdout()
			if res.Note != "" {
				fmt.Fprintf(w, "approval of node %s of run %s by %s recorded\n%s\n", o.Node, res.Run, o.By, res.Note)
				return nil
			}
			fmt.Fprintf(w, "node %s of run %s approved by %s\n", o.Node, res.Run, o.By)
			printNext(w, res.Outcome, res.Run, "what follows the gate starts now")
			return nil
		},
	}
	f.add(c)
	clusterURL = c.Flags().String("cluster", os.Getenv("REPRISE_CLUSTER"), "etcd://HOST:PORT[,…]/PREFIX: send the approval through etcd to the coordinator leading the run (from any machine); with none leading, it is written to the state (env REPRISE_CLUSTER)")
	c.Flags().StringVar(&o.By, "by", "", "who approves (required)")
	c.Flags().StringVar(&o.Comment, "comment", "", "why, or what was checked")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return c
}

// runWaitingAt returns the run whose gate node waits for approval: the
// only unfinished run where it does. None or several is an error saying
// which runs there are.
func runWaitingAt(path, node string) (string, error) {
	r, _, closeFn, err := openReader(path)
	if err != nil {
		return "", err
	}
	defer closeFn()
	runs, err := r.Runs()
	if err != nil {
		return "", err
	}
	var found []string
	var gates []string
	for _, run := range runs {
		if !run.Unfinished() {
			continue
		}
		recs, err := r.Nodes(run.ID)
		if err != nil {
			return "", err
		}
		for _, rec := range recs {
			if rec.State != state.NodeWaiting {
				continue
			}
			if rec.ID == node {
				found = append(found, run.ID)
			} else {
				gates = append(gates, rec.ID)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		hint := ""
		if c := graphs.Suggest(node, gates); c != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", c)
		} else if len(gates) > 0 {
			hint = fmt.Sprintf(" (gates waiting: %s)", strings.Join(uniqueSorted(gates), ", "))
		}
		return "", fmt.Errorf("approve node %q: no unfinished run has it waiting for approval%s", node, hint)
	}
	return "", usageError("approve node %q: it waits in %d runs (%s): name the run, `reprise approve RUN %s`", node, len(found), strings.Join(found, ", "), node)
}

func uniqueSorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
