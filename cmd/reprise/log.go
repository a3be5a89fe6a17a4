package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/anchor"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

func newLogCmd() *cobra.Command {
	var opts logOptions
	var statePath, anchorSrc *string
	c := &cobra.Command{
		Use:   "log [RUN]",
		Short: "Print a run's journal (default: the latest unfinished run, else the newest)",
		Long: `Print a run's journal: every transition, approval, override and resume, in
order. --json prints one entry per line as stored ({"seq", "time", "type",
"node", "state", "attempt", "msg", "by", "data", "record", "prev", "hash"}).
An entry stored with the run record holds a copy of it (data "run_record",
for --verify), shown with --json only.

--verify checks the run instead, at every level it can: the hash chain (each
entry's bytes, order and link, and the head), each node record against the
journal, the graph snapshot against its hash, the run record (its status,
times, options, certifications, clean-up) against the journal's last word
on it, and the journal against the
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
			opts.StatePath, opts.Anchor, opts.RunID = *statePath, *anchorSrc, argOr(args, "")
			res, err := runLog(c.Context(), opts)
			out := c.OutOrStdout()
			if opts.Verify {
				printVerify(out, res.Verify, err)
				return err
			}
			if err != nil {
				return err
			}
			return printJournal(out, c.ErrOrStderr(), res, opts.JSON)
		},
	}
	statePath = addStateFlag(c)
	anchorSrc = addAnchorFlag(c, "with --verify, also check the journal against the heads anchored in this file or at this URL (env REPRISE_ANCHOR)")
	c.Flags().StringVar(&opts.Node, "node", "", "only the entries of this node")
	c.Flags().BoolVar(&opts.JSON, "json", false, "one JSON entry per line")
	c.Flags().BoolVar(&opts.Verify, "verify", false, "check the journal's hash chain")
	return c
}

// logOptions are the options of `reprise log [RUN]`.
type logOptions struct {
	// StatePath is the state file (--state).
	StatePath string
	// RunID is the run ("": the latest unfinished, else the newest).
	RunID string
	// Node keeps only this node's entries (--node).
	Node string
	// Verify checks the run instead of reading its journal (--verify).
	Verify bool
	// Anchor is a file or URL of anchored heads to check against, with
	// Verify (--anchor).
	Anchor string
	// JSON asks for one JSON entry per line (the command prints them).
	JSON bool
}

// logResult is a run's journal as read, or with Verify what held.
type logResult struct {
	RunID string
	// Journal is the entries that could be read (of Node, when given);
	// Broken says where the journal breaks ("": it does not).
	Journal []state.Entry
	Broken  string
	// Verify is what held of the run's check (nil when not even the
	// chain and the records hold).
	Verify *logVerify
}

// logVerify is what `log --verify` found to hold.
type logVerify struct {
	RunID   string
	Report  state.VerifyReport
	Anchors *anchor.Report // nil: they could not be checked
}

// runLog reads run opts.RunID's journal, or with opts.Verify checks the run
// at every level: the hash chain, the records, the snapshot and the run
// record, then the
// anchors of the JSON log and of opts.Anchor. A broken journal is no error
// when read (Broken says where); a check that fails is one (exit 1), and
// the result still says what held before it.
func runLog(_ context.Context, opts logOptions) (logResult, error) {
	r, _, closeFn, err := openReader(opts.StatePath)
	if err != nil {
		return logResult{}, err
	}
	defer closeFn()
	run, err := pickRun(r, opts.RunID)
	if err != nil {
		return logResult{}, err
	}
	if opts.Verify {
		v, err := verifyRun(r, run.ID, opts.StatePath, opts.Anchor)
		return logResult{RunID: run.ID, Verify: v}, err
	}
	return readJournal(r, run.ID, opts.Node)
}

// verifyRun checks run runID at every level and returns what held.
func verifyRun(r reader, runID, statePath, anchorSrc string) (*logVerify, error) {
	rep, err := r.Verify(runID)
	if err != nil {
		return nil, err
	}
	switch {
	case !rep.OK && rep.Level == "chain":
		return nil, withCode(exitError, fmt.Errorf("journal of run %s is broken at entry %d (chain): %s (%d entries read)",
			runID, rep.FirstBad, rep.Problem, rep.Entries))
	case !rep.OK:
		return nil, withCode(exitError, fmt.Errorf("run %s fails verification (%s): %s (%d entries read)",
			runID, rep.Level, rep.Problem, rep.Entries))
	}
	v := &logVerify{RunID: runID, Report: rep}
	srcs := []string{logPath(statePath)}
	if anchorSrc != "" {
		srcs = append(srcs, anchorSrc)
	}
	ar, err := checkAnchors(r, runID, srcs...)
	if err != nil {
		return v, err
	}
	if !ar.OK {
		return v, withCode(exitError, fmt.Errorf("run %s fails verification (anchor): %s", runID, ar.Problem))
	}
	if ar.Checked == 0 && anchorSrc != "" {
		return v, withCode(exitError, fmt.Errorf("run %s: no anchor of this run in %s (nor in the JSON log): nothing outside the file vouches for its journal", runID, anchorSrc))
	}
	v.Anchors = &ar
	return v, nil
}

// printVerify prints what held of a run's check; err is the check's
// error (the anchors' line is printed only without one).
func printVerify(out io.Writer, v *logVerify, err error) {
	if v == nil {
		return
	}
	rep := v.Report
	fmt.Fprintf(out, "journal of run %s: %d entries, hash chain intact (head: entry %d, %.16s…)\n", v.RunID, rep.Entries, rep.HeadSeq, rep.HeadHash)
	fmt.Fprintf(out, "node records: %d, each as the journal left it; graph snapshot matches its hash; run record as the journal left it\n", rep.Records)
	if err != nil || v.Anchors == nil {
		return
	}
	if v.Anchors.Checked == 0 {
		fmt.Fprintln(out, "anchors: none found for this run (give --anchor FILE_OR_URL): a journal rewritten as a whole, head included, would not be caught")
		return
	}
	fmt.Fprintf(out, "anchors: %d, up to entry %d, agree with the journal\n", v.Anchors.Checked, v.Anchors.Seq)
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
			// The run record stored with the entry is for log --verify
			// (and --json), as a node record's digest is.
			if e.Data[k] != "" && k != state.DataRunRecord {
				fmt.Fprintf(&b, " %s=%s", k, e.Data[k])
			}
		}
	}
	return b.String()
}

// readJournal reads a run's journal: the entries that can be read (of
// node, when given) and where the chain breaks.
func readJournal(r reader, runID, node string) (logResult, error) {
	m, err := view.Load(r, runID, view.LoadOptions{Journal: true})
	if err != nil {
		return logResult{}, err
	}
	res := logResult{RunID: runID}
	if v := m.Verify; v != nil && !v.OK {
		res.Broken = fmt.Sprintf("journal broken at entry %d: %s", v.FirstBad, v.Problem)
	} else if m.JournalErr != nil {
		res.Broken = "journal broken: " + m.JournalErr.Error()
	}
	for _, e := range m.Journal {
		if node == "" || e.NodeID == node {
			res.Journal = append(res.Journal, e)
		}
	}
	return res, nil
}

// printJournal prints a run's journal: the entries that could be read,
// the broken chain said first (exit 3).
func printJournal(out, errw io.Writer, res logResult, asJSON bool) error {
	if res.Broken != "" {
		if asJSON {
			fmt.Fprintln(errw, "reprise: "+res.Broken)
		} else {
			fmt.Fprintf(out, "!! %s; the entries below are shown as read, treat them as untrusted\n", res.Broken)
		}
	}
	enc := json.NewEncoder(out)
	for _, e := range res.Journal {
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
	if res.Broken != "" {
		return withCode(exitBrokenJournal, fmt.Errorf("run %s: %s", res.RunID, res.Broken))
	}
	return nil
}
