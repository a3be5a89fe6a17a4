package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/state"
)

func init() { register("log", newLogCmd) }

func newLogCmd() *cobra.Command {
	var asJSON, verify bool
	var node string
	var statePath *string
	c := &cobra.Command{
		Use:   "log [RUN]",
		Short: "Print a run's journal (default: the latest unfinished run, else the newest)",
		Long: `Print a run's journal: every transition, approval, override and resume, in
order. --json prints one entry per line as stored ({"seq", "time", "type",
"node", "state", "attempt", "msg", "by", "data", "prev", "hash"}). --verify
checks the hash chain instead: exit 0 when whole, 1 naming the first bad entry.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, run, _, closeFn, err := openRun(*statePath, args)
			if err != nil {
				return err
			}
			defer closeFn()
			out := c.OutOrStdout()
			if verify {
				rep, err := r.Verify(run.ID)
				if err != nil {
					return err
				}
				if !rep.OK {
					return withCode(exitError, fmt.Errorf("journal of run %s is broken at entry %d: %s (%d entries read)",
						run.ID, rep.FirstBad, rep.Problem, rep.Entries))
				}
				fmt.Fprintf(out, "journal of run %s: %d entries, hash chain intact\n", run.ID, rep.Entries)
				return nil
			}
			enc := json.NewEncoder(out)
			return r.Journal(run.ID, 0, func(e state.Entry) error {
				if node != "" && e.NodeID != node {
					return nil
				}
				if asJSON {
					return enc.Encode(e)
				}
				_, err := fmt.Fprintln(out, formatEntry(e))
				return err
			})
		},
	}
	statePath = addStateFlag(c)
	c.Flags().StringVar(&node, "node", "", "only the entries of this node")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON entry per line")
	c.Flags().BoolVar(&verify, "verify", false, "check the journal's hash chain")
	return c
}

func formatEntry(e state.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d %s %-15s", e.Seq, e.Time.Local().Format(time.DateTime), e.Type)
	if e.NodeID != "" {
		fmt.Fprintf(&b, " %s", e.NodeID)
	}
	if e.Attempt > 0 {
		fmt.Fprintf(&b, " #%d", e.Attempt)
	}
	if e.By != "" {
		fmt.Fprintf(&b, " by %s", e.By)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Data) > 0 {
		keys := make([]string, 0, len(e.Data))
		for k := range e.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if e.Data[k] != "" {
				fmt.Fprintf(&b, " %s=%s", k, e.Data[k])
			}
		}
	}
	return b.String()
}
