package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
)

func newCleanupCmd() *cobra.Command {
	var by, note string
	var statePath *string
	c := &cobra.Command{
		Use:   "cleanup RUN --by NAME --note TEXT",
		Short: "Record a drill's clean-up: who cleaned up the exercise environment, and what was done",
		Long: `Record that what drill RUN (started with run --drill) set up in the exercise
environment was cleaned up: by whom, when, and what was done. The run keeps the
record and the journal an entry "cleaned-up"; status, runs and the report show
it. A cleaned-up drill can no longer be resumed or retried (start a new drill),
and resume without RUN passes it by. Only drills are cleaned up, and not while
they run. Recording again replaces the run's record; the journal keeps both.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("cleanup: want the drill's RUN id (`reprise runs` lists them), got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			runID := args[0]
			if strings.TrimSpace(by) == "" {
				return usageError("cleanup: --by NAME is required: the journal records who cleaned up")
			}
			if strings.TrimSpace(note) == "" {
				return usageError("cleanup: --note TEXT is required: say what was cleaned up (VMs reverted, test data deleted, …)")
			}
			if err := withStoppedRun(*statePath, holder("cleanup", runID), runID, func(e *engine.Engine) error {
				return e.RecordCleanup(c.Context(), runID, by, note)
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "recorded clean-up of drill %s by %s\n", runID, by)
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().StringVar(&by, "by", "", "who cleaned up (required; kept in the journal)")
	c.Flags().StringVar(&note, "note", "", "what was cleaned up (required; kept in the journal)")
	return c
}
