package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/internal/operate"
)

// cleanupOptions are what cleanup needs.
type cleanupOptions struct {
	State, Anchor string
	Run           string
	By, Note      string
}

// runCleanup records the drill's clean-up (operate.Do), on an etcd state
// with operators with an admin's token (authorizeState).
func runCleanup(ctx context.Context, o cleanupOptions) (operate.Outcome, error) {
	by, err := authorizeState(o.State, "cleanup "+o.Run, actCleanup, o.By)
	if err != nil {
		return operate.Outcome{}, err
	}
	o.By = by
	return actOn(ctx, o.State, o.Anchor, holder("cleanup", o.Run), o.Run, func(ctx context.Context, a control.Actions) error {
		return a.RecordCleanup(ctx, o.Run, o.By, o.Note)
	})
}

func newCleanupCmd() *cobra.Command {
	var o cleanupOptions
	var f actionFlags
	c := &cobra.Command{
		Use:   "cleanup RUN --by NAME --note TEXT",
		Short: "Record a drill's clean-up: who cleaned up the exercise environment, and what was done",
		Long: `Record that what drill RUN (started with run --drill) set up in the exercise
environment was cleaned up: by whom, when, and what was done. The run keeps the
record and the journal an entry "cleaned-up"; status, runs and the report show
it. A cleaned-up drill can no longer be resumed or retried (start a new drill),
and resume without RUN passes it by. Only drills are cleaned up, and not while
they run. Recording again replaces the run's record; the journal keeps both.
On an etcd state that has operators, it needs an admin's token
(REPRISE_TOKEN, REPRISE_TOKEN_FILE), and --by must name that admin.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("cleanup: want the drill's RUN id (`reprise runs` lists them), got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if strings.TrimSpace(o.By) == "" {
				return usageError("cleanup: --by NAME is required: the journal records who cleaned up")
			}
			if strings.TrimSpace(o.Note) == "" {
				return usageError("cleanup: --note TEXT is required: say what was cleaned up (VMs reverted, test data deleted, …)")
			}
			o.Run, o.State, o.Anchor = args[0], *f.state, *f.anchor
			if _, err := runCleanup(c.Context(), o); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "recorded clean-up of drill %s by %s\n", o.Run, o.By)
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&o.By, "by", "", "who cleaned up (required; kept in the journal)")
	c.Flags().StringVar(&o.Note, "note", "", "what was cleaned up (required; kept in the journal)")
	return c
}
