package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

func init() { register("status", newStatusCmd) }

func newStatusCmd() *cobra.Command {
	var asJSON bool
	var statePath *string
	c := &cobra.Command{
		Use:   "status [RUN]",
		Short: "Show where a run stands (default: the latest unfinished run, else the newest)",
		Long: `Show a run's progress: counts and % done by kind and by effective criticality,
running nodes with their elapsed time, failures with their last error, gates
waiting for approval, and an ETA from the estimates and the measured times.
Works from another terminal while the run goes on (through the running
process's control socket, STATE.sock).

A drill (run --drill) is said so first, with its clean-up record or the
command that records it.

--json prints the Summary object: {"run", "status", "graph", "live", "drill"
(true for a drill), "cleanup" ({"by", "at", "note"} once recorded), "total",
"done", "percent", "counts": {state: n}, "by_kind" and "by_criticality":
[{"key", "total", "done", "percent", "counts"}], "running": [{"id", "attempt",
"started", "elapsed_seconds"}], "failures": [{"id", "state", "attempts",
"last_error"}], "waiting": [id], "eta_seconds", "nodes": [{"id", "state",
"attempts", "kind", "criticality", "started", "ended", "last_error",
"approved_by", "marked_by"}]}.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, run, live, closeFn, err := openRun(*statePath, args)
			if err != nil {
				return err
			}
			defer closeFn()
			recs, err := r.Nodes(run.ID)
			if err != nil {
				return err
			}
			var g *graphs.Graph
			if snap, err := r.Snapshot(run.ID); err == nil {
				g, _ = graphs.Parse(run.GraphFile, snap)
			}
			sum := engine.Summarize(run, g, recs, live == run.ID, time.Now())
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			printSummary(c.OutOrStdout(), sum)
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return c
}

func printSummary(w io.Writer, s engine.Summary) {
	printDrill(w, s)
	live := ""
	if s.Live {
		live = " (in progress)"
	}
	fmt.Fprintf(w, "run %s  graph %s  status %s%s\n", s.Run, s.Graph, s.Status, live)
	eta := ""
	if s.ETASeconds > 0 {
		eta = "  eta " + graphs.FormatDuration(time.Duration(s.ETASeconds)*time.Second)
	}
	fmt.Fprintf(w, "progress  %d/%d done (%.1f%%)%s\n", s.Done, s.Total, s.Percent, eta)
	var parts []string
	for _, st := range state.NodeStates {
		if n := s.Counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	fmt.Fprintf(w, "nodes     %s\n", strings.Join(parts, ", "))
	printBreakdown(w, "by kind", s.ByKind)
	printBreakdown(w, "by criticality", s.ByCriticality)
	if len(s.Running) > 0 {
		fmt.Fprintln(w, "running:")
		for _, r := range s.Running {
			fmt.Fprintf(w, "  %-28s attempt %d, %s\n", r.ID, r.Attempt, time.Duration(r.ElapsedSeconds*float64(time.Second)).Round(time.Second))
		}
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(w, "failures:")
		for i, f := range s.Failures {
			if i == 20 {
				fmt.Fprintf(w, "  … and %d more (status --json lists them all)\n", len(s.Failures)-20)
				break
			}
			fmt.Fprintf(w, "  %-28s %s after %d attempt(s): %s\n", f.ID, f.State, f.Attempts, firstLineOf(f.LastError))
		}
	}
	if len(s.Waiting) > 0 {
		fmt.Fprintln(w, "waiting for approval:")
		for _, id := range s.Waiting {
			fmt.Fprintf(w, "  %-28s reprise approve %s %s --by NAME\n", id, s.Run, id)
		}
	}
}

// printDrill says first that a drill is a drill, and where its clean-up
// stands.
func printDrill(w io.Writer, s engine.Summary) {
	if !s.Drill {
		return
	}
	fmt.Fprintln(w, "DRILL — an exercise on the real plan")
	if c := s.Cleanup; c != nil {
		fmt.Fprintf(w, "clean-up: recorded by %s at %s: %s\n", c.By, c.At.Local().Format(time.DateTime), c.Note)
		return
	}
	when := ""
	if s.Live {
		when = "once it is over: "
	}
	fmt.Fprintf(w, "clean-up: not recorded yet (%sreprise cleanup %s --by NAME --note TEXT)\n", when, s.Run)
}

func printBreakdown(w io.Writer, title string, bs []engine.Breakdown) {
	if len(bs) == 0 {
		return
	}
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%s %d/%d (%.0f%%)", b.Key, b.Done, b.Total, b.Percent))
	}
	fmt.Fprintf(w, "%-15s %s\n", title, strings.Join(parts, ", "))
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
