package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

func newApproveCmd() *cobra.Command {
	var by, comment string
	var quiet bool
	var statePath, clusterURL *string
	c := &cobra.Command{
		Use:   "approve [RUN] NODE --by NAME [--comment TEXT]",
		Short: "Approve a manual gate: the journal records who, when and why",
		Long: `Approve a manual gate that waits for a human. On a parked run the approval is
written to the state file (continue with resume); on a run going on with
--wait it goes through that process, which then starts what follows the gate.
Without RUN, the run where gate NODE waits (refused when several do). A
mistyped NODE gets the nearest id. -q prints nothing on success.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			if by == "" {
				return usageError("approve: --by NAME is required: the journal records who approved")
			}
			node := args[len(args)-1]
			runID := ""
			if len(args) == 2 {
				runID = args[0]
			} else {
				var err error
				if runID, err = runWaitingAt(*statePath, node); err != nil {
					return err
				}
			}
			live, err := approveThroughCluster(c, clusterOf(*clusterURL, *statePath), runID, node, by, comment)
			if err != nil {
				return err
			}
			if !live {
				live, err = approve(c, *statePath, runID, node, by, comment)
			}
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			if note := gateNote(*statePath, runID, node); note != "" {
				fmt.Fprintf(c.OutOrStdout(), "approval of node %s of run %s by %s recorded\n%s\n", node, runID, by, note)
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s of run %s approved by %s\n", node, runID, by)
			if !live {
				fmt.Fprintf(c.OutOrStdout(), "continue with `reprise resume %s`\n", runID)
			}
			return nil
		},
	}
	statePath = addStateFlag(c)
	clusterURL = c.Flags().String("cluster", os.Getenv("REPRISE_CLUSTER"), "etcd://HOST:PORT[,…]/PREFIX: send the approval through etcd to the coordinator leading the run (from any machine); with none leading, it is written to the state (env REPRISE_CLUSTER)")
	c.Flags().StringVar(&by, "by", "", "who approves (required)")
	c.Flags().StringVar(&comment, "comment", "", "why, or what was checked")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return c
}

// approve writes the approval to the state file, or sends it to the
// process that holds the file; live says which.
func approve(c *cobra.Command, path, runID, node, by, comment string) (live bool, err error) {
	st, err := openStore(path, holder("approve", runID, node))
	var locked *state.LockedError
	if errors.As(err, &locked) {
		client, cerr := control.Dial(control.SocketPath(path))
		if cerr != nil {
			return false, fmt.Errorf("%w; and its control socket does not answer: %v", err, cerr)
		}
		liveRun, _ := client.Live()
		return liveRun == runID, client.Approve(c.Context(), runID, node, by, comment)
	}
	if err != nil {
		return false, err
	}
	defer st.Close()
	log, closeLog, err := openLog(path)
	if err != nil {
		return false, err
	}
	defer closeLog()
	return false, engine.New(st, host.New(host.Options{}), engine.Options{Logger: log}).Approve(c.Context(), runID, node, by, comment)
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
