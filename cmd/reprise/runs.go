package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

func newRunsCmd() *cobra.Command {
	var opts runsOptions
	var statePath *string
	c := &cobra.Command{
		Use:   "runs",
		Short: "List the runs of the state file, newest first",
		Long: `List the runs of the state file, newest first. --json prints an array of run
records: {"id", "graph_name", "graph_file", "graph_hash", "status", "options"
({"parallelism", "targets", "fail_fast", "drill"}), "created", "updated",
"finished", "total", "cleanup" ({"by", "at", "note"}: a drill's clean-up, once
recorded), "live" (a process runs it now), "last_seen" (the last change
recorded)}. A run recorded as running whose process is gone (crash, kill,
reboot) shows as "interrupted", with the time of its last change. --latest prints only the id of the newest run, for scripts:
RUN=$(reprise runs --latest).

When the file holds drills (run --drill), a DRILL column marks them, with
"cleaned up" once their clean-up is recorded (reprise cleanup).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.StatePath = *statePath
			rows, err := runRuns(c.Context(), opts)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			switch {
			case opts.Latest:
				fmt.Fprintln(out, rows[0].ID)
				return nil
			case opts.JSON:
				return writeJSON(out, rows)
			}
			return printRuns(out, rows)
		},
	}
	statePath = addStateFlag(c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print the runs as JSON")
	c.Flags().BoolVar(&opts.Latest, "latest", false, "print only the id of the newest run")
	return c
}

// runsOptions are the options of `reprise runs`.
type runsOptions struct {
	// StatePath is the state file (--state).
	StatePath string
	// Latest asks for the newest run only (--latest): an error when there
	// is none.
	Latest bool
	// JSON asks for JSON (the command prints it).
	JSON bool
}

// runRuns lists the runs of the state file, newest first, each with its
// true status (a run whose process is gone is interrupted) and its last
// change; with opts.Latest only the newest, and an error wrapping
// state.ErrNoRun when there is none.
func runRuns(_ context.Context, opts runsOptions) ([]runRow, error) {
	r, live, closeFn, err := openReader(opts.StatePath)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	runs, err := r.Runs()
	if err != nil {
		return nil, err
	}
	if opts.Latest {
		if len(runs) == 0 {
			return nil, fmt.Errorf("state file %s: %w", opts.StatePath, state.ErrNoRun)
		}
		return []runRow{{Run: runs[0]}}, nil
	}
	rows := make([]runRow, 0, len(runs))
	for _, run := range runs {
		row, err := newRunRow(r, run, run.ID == live)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// printRuns writes the runs as a table, with a DRILL column when the file
// holds drills.
func printRuns(w io.Writer, rows []runRow) error {
	drills := slices.ContainsFunc(rows, func(r runRow) bool { return r.Options.Drill })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "RUN\tSTATUS\tGRAPH\tNODES\tCREATED\tLAST CHANGE"
	if drills {
		header += "\tDRILL"
	}
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		status := string(row.Status)
		switch {
		case row.Live:
			status += " (in progress)"
		case row.gone:
			status += " (process gone)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s", row.ID, status, row.GraphName, row.Total,
			row.Created.Local().Format(time.DateTime), row.LastSeen.Local().Format(time.DateTime))
		if drills {
			fmt.Fprintf(tw, "\t%s", drillMark(row.Run))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
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

// runRow is one run as `runs` shows it: its record with its true status,
// whether a process runs it, and its last change.
type runRow struct {
	state.Run
	Live     bool      `json:"live"`
	LastSeen time.Time `json:"last_seen,omitzero"`

	gone bool // recorded as running, but its process is gone
}

func newRunRow(r reader, run state.Run, live bool) (runRow, error) {
	nodes, err := r.Nodes(run.ID)
	if err != nil {
		return runRow{}, fmt.Errorf("read nodes of run %q: %w", run.ID, err)
	}
	row := runRow{Run: run, Live: live, LastSeen: view.LastSeen(run, nodes)}
	row.Status = view.RunStatus(run, live)
	row.gone = row.Status != run.Status
	return row, nil
}
