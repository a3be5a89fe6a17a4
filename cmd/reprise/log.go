package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

func newLogCmd() *cobra.Command {
	var asJSON, verify bool
	var node string
	var statePath, anchorSrc *string
	c := &cobra.Command{
		Use:   "log [RUN]",
		Short: "Print a run's journal (default: the latest unfinished run, else the newest)",
		Long: `Print a run's journal: every transition, approval, override and resume, in
order. --json prints one entry per line as stored ({"seq", "time", "type",
"node", "state", "attempt", "msg", "by", "data", "record", "prev", "hash"}).

--verify checks the run instead, at every level it can: the hash chain (each
entry's bytes, order and link, and the head), each node record against the
journal, the graph snapshot against its hash, and the journal against the
heads anchored outside the file: the anchor lines of the JSON log beside the
state file, and --anchor FILE_OR_URL (the file or webhook given to run and
resume). Exit 0 when everything agrees, 1 naming the level and the first
problem. See the README's security notes for what each level proves.

A journal whose chain is broken is still printed, all of it that can be
read, under a first line "journal broken at entry N: …" (on stderr with
--json), and log exits 3. A node marked done by hand reads "marked done by
NAME: reason".`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, run, _, closeFn, err := openRun(*statePath, args)
			if err != nil {
				return err
			}
			defer closeFn()
			out := c.OutOrStdout()
			if verify {
				return verifyRun(out, r, run.ID, *statePath, *anchorSrc)
			}
			return printJournal(out, c.ErrOrStderr(), r, run.ID, node, asJSON)
		},
	}
	statePath = addStateFlag(c)
	anchorSrc = addAnchorFlag(c, "with --verify, also check the journal against the heads anchored in this file or at this URL (env REPRISE_ANCHOR)")
	c.Flags().StringVar(&node, "node", "", "only the entries of this node")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON entry per line")
	c.Flags().BoolVar(&verify, "verify", false, "check the journal's hash chain")
	return c
}

// verifyRun checks run runID at every level and prints what held.
func verifyRun(out io.Writer, r reader, runID, statePath, anchorSrc string) error {
	rep, err := r.Verify(runID)
	if err != nil {
		return err
	}
	switch {
	case !rep.OK && rep.Level == "chain":
		return withCode(exitError, fmt.Errorf("journal of run %s is broken at entry %d (chain): %s (%d entries read)",
			runID, rep.FirstBad, rep.Problem, rep.Entries))
	case !rep.OK:
		return withCode(exitError, fmt.Errorf("run %s fails verification (%s): %s (%d entries read)",
			runID, rep.Level, rep.Problem, rep.Entries))
	}
	fmt.Fprintf(out, "journal of run %s: %d entries, hash chain intact (head: entry %d, %.16s…)\n", runID, rep.Entries, rep.HeadSeq, rep.HeadHash)
	fmt.Fprintf(out, "node records: %d, each as the journal left it; graph snapshot matches its hash\n", rep.Records)
	srcs := []string{logPath(statePath)}
	if anchorSrc != "" {
		srcs = append(srcs, anchorSrc)
	}
	ar, err := checkAnchors(r, runID, srcs...)
	if err != nil {
		return err
	}
	if !ar.OK {
		return withCode(exitError, fmt.Errorf("run %s fails verification (anchor): %s", runID, ar.Problem))
	}
	switch {
	case ar.Checked == 0 && anchorSrc != "":
		return withCode(exitError, fmt.Errorf("run %s: no anchor of this run in %s (nor in the JSON log): nothing outside the file vouches for its journal", runID, anchorSrc))
	case ar.Checked == 0:
		fmt.Fprintln(out, "anchors: none found for this run (give --anchor FILE_OR_URL): a journal rewritten as a whole, head included, would not be caught")
	default:
		fmt.Fprintf(out, "anchors: %d, up to entry %d, agree with the journal\n", ar.Checked, ar.Seq)
	}
	return nil
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
	switch {
	case e.Type == state.EntryMarked && e.By != "":
		fmt.Fprintf(&b, " %s", markedText(e.By, e.Message))
	case e.By != "":
		fmt.Fprintf(&b, " by %s", e.By)
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	case e.Message != "":
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

// printJournal prints a run's journal: the entries that can be read, the
// broken chain said first (exit 3).
func printJournal(out, errw io.Writer, r reader, runID, node string, asJSON bool) error {
	m, err := view.Load(r, runID, view.LoadOptions{Journal: true})
	if err != nil {
		return err
	}
	broken := ""
	if v := m.Verify; v != nil && !v.OK {
		broken = fmt.Sprintf("journal broken at entry %d: %s", v.FirstBad, v.Problem)
	} else if m.JournalErr != nil {
		broken = "journal broken: " + m.JournalErr.Error()
	}
	if broken != "" {
		if asJSON {
			fmt.Fprintln(errw, "reprise: "+broken)
		} else {
			fmt.Fprintf(out, "!! %s; the entries below are shown as read, treat them as untrusted\n", broken)
		}
	}
	enc := json.NewEncoder(out)
	for _, e := range m.Journal {
		if node != "" && e.NodeID != node {
			continue
		}
		var err error
		if asJSON {
			err = enc.Encode(e)
		} else {
			_, err = fmt.Fprintln(out, formatEntry(e))
		}
		if err != nil {
			return err
		}
	}
	if broken != "" {
		return withCode(exitBrokenJournal, fmt.Errorf("run %s: %s", runID, broken))
	}
	return nil
}
