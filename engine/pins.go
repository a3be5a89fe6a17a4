package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/reprise-si/reprise/graphs"
)

// pinChecker is implemented by hosts that can check the declared plugins'
// binaries (existence, execute bit, pinned sha256) before a run starts
// anything (engine/host does).
type pinChecker interface {
	CheckPins(ctx context.Context, plugins []string) error
}

// readier is implemented by hosts that can start a plugin ahead of a call:
// a plugin's start-up then counts against its own start timeout, not
// against the node's timeout.
type readier interface {
	Ready(ctx context.Context, plugin string) error
}

// checkPins checks every plugin that the included nodes of g use, when the
// host can: a pinned binary that changed, or a missing one, ends the run or
// resume before any node starts.
func (e *Engine) checkPins(ctx context.Context, g *graphs.Graph, include []bool) error {
	pc, ok := e.hostOf(g).(pinChecker)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var names []string
	for i, n := range g.Nodes {
		if (include == nil || include[i]) && !seen[n.Plugin] {
			seen[n.Plugin] = true
			names = append(names, n.Plugin)
		}
	}
	if err := pc.CheckPins(ctx, names); err != nil {
		return fmt.Errorf("check plugins before starting: %w", err)
	}
	return nil
}

// isPermanent reports whether err cannot go away by retrying in this run
// (a plugin whose binary is missing or changed, or that refused the
// handshake): such a failure is not retried with backoff.
func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
