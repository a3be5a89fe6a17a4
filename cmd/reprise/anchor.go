package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/anchor"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/etcdconn"
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
	seq, hash, err := s.st.Head(runID)
	if err != nil || seq == 0 {
		return
	}
	abs := s.path
	if !etcdconn.IsURL(abs) {
		abs, _ = filepath.Abs(s.path)
	}
	a := anchor.New(abs, runID, seq, hash, anchor.KeyFromEnv())
	s.log.Info("journal anchor", zap.String("anchor", a.Kind), zap.String("state", a.State),
		zap.String("run", a.Run), zap.Uint64("seq", a.Seq), zap.String("hash", a.Hash), zap.String("mac", a.MAC))
	if s.anchor == "" {
		return
	}
	if err := anchor.Write(context.Background(), s.anchor, a); err != nil {
		fmt.Fprintf(os.Stderr, "warning: the journal head of run %s (entry %d) was not anchored: %v\n", runID, seq, err)
		s.log.Warn("journal anchor not written", zap.String("run", runID), zap.Error(err))
	}
}

// checkIntegrity refuses to go on with a run whose state the journal does
// not vouch for (records, snapshot, chain), or whose journal disagrees with
// the anchors at src (when set): resume and retry call it before any write.
func checkIntegrity(st state.Backend, statePath, runID, src string) error {
	rep, err := st.Verify(runID)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("run %s: the state file does not match its journal (%s): %s; refusing to go on: `reprise log --verify %s` says more, restore the state file from a backup: %w",
			runID, rep.Level, rep.Problem, runID, state.ErrTampered)
	}
	if src == "" {
		return nil
	}
	ar, err := checkAnchors(st, runID, src)
	if err != nil {
		return err
	}
	if !ar.OK {
		return fmt.Errorf("run %s: the journal does not match the anchors in %s: %s; refusing to go on: %w", runID, src, ar.Problem, state.ErrTampered)
	}
	return nil
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
