package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
)

func init() { register("approve", newApproveCmd) }

func newApproveCmd() *cobra.Command {
	var by, comment string
	var statePath *string
	c := &cobra.Command{
		Use:   "approve RUN NODE --by NAME [--comment TEXT]",
		Short: "Approve a manual gate: the journal records who, when and why",
		Long: `Approve a manual gate that waits for a human. On a parked run the approval is
written to the state file (continue with resume); on a run going on with
--wait it goes through that process, which then starts what follows the gate.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			runID, node := args[0], args[1]
			if by == "" {
				return usageError("approve: --by NAME is required: the journal records who approved")
			}
			live, err := approve(c, *statePath, runID, node, by, comment)
			if err != nil {
				return err
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
	c.Flags().StringVar(&by, "by", "", "who approves (required)")
	c.Flags().StringVar(&comment, "comment", "", "why, or what was checked")
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
		return liveRun == runID, client.Approve(runID, node, by, comment)
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
