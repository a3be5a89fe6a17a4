package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/anchor"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/operate"
)

// addAnchorFlag adds --anchor FILE_OR_URL (default $REPRISE_ANCHOR).
func addAnchorFlag(c *cobra.Command, usage string) *string {
	return c.Flags().String("anchor", os.Getenv("REPRISE_ANCHOR"), usage)
}

// writeAnchors records the journal head of run runID outside the state
// file: always as a line of the JSON log, and in dest when set (a file
// opened O_APPEND, or a webhook). A failure is said on stderr and in the
// log, not fatal: the run itself is done.
func (s *session) writeAnchors(runID string) {
	if err := operate.WriteAnchor(context.Background(), s.st, s.log, runID, s.anchor); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
}

// checkIntegrity refuses to go on with a run whose state the journal does
// not vouch for (records, snapshot, chain), or whose journal disagrees with
// the anchors at src (when set): resume, retry and every operator's action
// call it before any write (operate.CheckIntegrity).
func checkIntegrity(st state.Backend, _, runID, src string) error {
	return operate.CheckIntegrity(context.Background(), st, runID, src)
}

// checkAnchors reads the anchors at each source and checks r's journal of
// runID against them together.
func checkAnchors(r reader, runID string, srcs ...string) (anchor.Report, error) {
	var all []anchor.Anchor
	for _, src := range srcs {
		as, err := anchor.Read(context.Background(), src)
		if err != nil {
			return anchor.Report{}, err
		}
		all = append(all, as...)
	}
	return anchor.Check(all, runID, anchor.KeyFromEnv(), r.Journal)
}
