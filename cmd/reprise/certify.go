package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
)

func newCertifyCmd() *cobra.Command {
	var by, comment string
	var statePath *string
	c := &cobra.Command{
		Use:   "certify RUN ZONE --by NAME --comment TEXT",
		Short: "Certify a trust zone clean, so that the nodes of the next zone may start",
		Long: `Record that trust zone ZONE of run RUN is certified clean: by whom, when, and
what was checked. No node of a zone starts before every more trusted zone is
certified; a run stops (parked) when only such nodes are left. Certify once
every node of the zone is done, most trusted zone first, then resume the run.
The run keeps the record and the journal an entry "zone-certified"; status,
plan and the reports show it. Not while the run is running.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("certify: want RUN and ZONE, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			runID, zone := args[0], args[1]
			if strings.TrimSpace(by) == "" {
				return usageError("certify: --by NAME is required: the journal records who certified the zone")
			}
			if strings.TrimSpace(comment) == "" {
				return usageError("certify: --comment TEXT is required: say what was checked")
			}
			if err := withStoppedRun(*statePath, holder("certify", runID, zone), runID, func(e *engine.Engine) error {
				return e.Certify(c.Context(), runID, zone, by, comment)
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "zone %s of run %s certified by %s\ncontinue with `reprise resume %s`\n", zone, runID, by, runID)
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().StringVar(&by, "by", "", "who certifies (required; kept in the journal)")
	c.Flags().StringVar(&comment, "comment", "", "what was checked (required; kept in the journal)")
	return c
}
