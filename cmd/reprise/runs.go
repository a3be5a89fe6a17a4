package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/state"
)

func newRunsCmd() *cobra.Command {
	var asJSON, latest bool
	var statePath *string
	c := &cobra.Command{
		Use:   "runs",
		Short: "List the runs of the state file, newest first",
		Long: `List the runs of the state file, newest first. --json prints an array of run
records: {"id", "graph_name", "graph_file", "graph_hash", "status", "options"
({"parallelism", "targets", "fail_fast", "drill"}), "created", "updated",
"finished", "total", "cleanup" ({"by", "at", "note"}: a drill's clean-up, once
recorded)}. --latest prints only the id of the newest run, for scripts:
RUN=$(reprise runs --latest).

When the file holds drills (run --drill), a DRILL column marks them, with
"cleaned up" once their clean-up is recorded (reprise cleanup).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			r, live, closeFn, err := openReader(*statePath)
			if err != nil {
				return err
			}
			defer closeFn()
			runs, err := r.Runs()
			if err != nil {
				return err
			}
			if latest {
				if len(runs) == 0 {
					return fmt.Errorf("state file %s: %w", *statePath, state.ErrNoRun)
				}
				fmt.Fprintln(c.OutOrStdout(), runs[0].ID)
				return nil
			}
			if asJSON {
				if runs == nil {
					runs = []state.Run{}
				}
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(runs)
			}
			drills := slices.ContainsFunc(runs, func(r state.Run) bool { return r.Options.Drill })
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			header := "RUN\tSTATUS\tGRAPH\tNODES\tCREATED\tUPDATED"
			if drills {
				header += "\tDRILL"
			}
			fmt.Fprintln(tw, header)
			for _, run := range runs {
				status := string(run.Status)
				if run.ID == live {
					status += " (in progress)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s", run.ID, status, run.GraphName, run.Total,
					run.Created.Local().Format(time.DateTime), run.Updated.Local().Format(time.DateTime))
				if drills {
					fmt.Fprintf(tw, "\t%s", drillMark(run))
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	statePath = addStateFlag(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	c.Flags().BoolVar(&latest, "latest", false, "print only the id of the newest run")
	return c
}

// drillMark is a run's DRILL cell: "-" for a real run, "drill", or "drill,
// cleaned up" once its clean-up is recorded.
func drillMark(run state.Run) string {
	switch {
	case !run.Options.Drill:
		return "-"
	case run.Cleanup != nil:
		return "drill, cleaned up"
	default:
		return "drill"
	}
}
