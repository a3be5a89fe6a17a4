package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/crisis"
	"github.com/reprise-si/reprise/internal/operate"
)

// runData is one run as a page or the API shows it.
type runData struct {
	M      *view.Model
	Crisis crisis.View
	// Agents, on an etcd state, are the agents of the run's zones
	// (agents.go); AgentsErr says why they could not be read.
	Agents    *cluster.AgentView
	AgentsErr string
}

// loadFresh reads run runID through the file or the socket: the shared
// view model (engine/view) and the crisis view beside it. Pages call load,
// which shares one loadFresh among the viewers of the same moment.
func (s *Server) loadFresh(runID string, journal bool) (*runData, error) {
	r, err := s.openState()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m, err := view.Load(r, runID, view.LoadOptions{Now: s.opts.Now(), Live: r.Live() == runID, Journal: journal,
		Graph: s.graphs.loader(r)})
	if err != nil {
		return nil, err
	}
	cv, err := crisis.Build(m, r.Journal)
	if err != nil {
		return nil, err
	}
	// The data is shared by concurrent pages (modelCache): build the
	// view's lazy deadline index now, so that pages only read it.
	cv.Deadline("")
	d := &runData{M: m, Crisis: cv}
	s.loadAgents(d)
	return d, nil
}

// runs lists the runs of the state file, newest first.
func (s *Server) runs() ([]state.Run, string, error) {
	r, err := s.openState()
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	runs, err := r.Runs()
	return runs, r.Live(), err
}

// action is what an operator does to a node (or, to certify, a zone).
type action string

const (
	actApprove action = "approve"
	actRetry   action = "retry"
	actMark    action = "mark"
	actCertify action = "certify"
)

// do performs act on target (a node; a zone to certify) of run runID as
// op, journaled with op's name, through operate.Do: on a stopped run the
// state file is checked against its journal (and the anchors), written and
// anchored; on a run going on in another process (a terminal's run, a
// resume started here) the action goes through its control socket and the
// run goes on from it at once.
func (s *Server) do(ctx context.Context, act action, runID, target string, op state.Operator, text string) (string, error) {
	defer s.models.forget(runID) // the next page shows what the action did
	by := op.Name
	switch {
	case act == actMark && strings.TrimSpace(text) == "":
		return "", fmt.Errorf("mark node %q: a reason is required: %w", target, errBadInput)
	case act == actCertify && strings.TrimSpace(text) == "":
		return "", fmt.Errorf("certify zone %q: a comment saying what was checked is required: %w", target, errBadInput)
	}
	o := operate.Options{StatePath: s.opts.StatePath, Holder: fmt.Sprintf("reprise serve: %s %s by %s", act, target, by), Anchor: s.opts.Anchor,
		Open:    func(_, holder string) (state.Backend, error) { return s.openWriter(holder) },
		OpenLog: s.openLog}
	out, err := operate.Do(ctx, o, runID, func(ctx context.Context, a control.Actions) error {
		switch act {
		case actApprove:
			return a.Approve(ctx, runID, target, by, text)
		case actRetry:
			ids, err := a.ResetNodes(ctx, runID, target, false, by)
			if err == nil && len(ids) == 0 {
				err = fmt.Errorf("retry node %q of run %q: it is pending already: %w", target, runID, errNotApplicable)
			}
			return err
		case actMark:
			return a.Mark(ctx, runID, target, by, text)
		case actCertify:
			return a.Certify(ctx, runID, target, by, text)
		}
		return fmt.Errorf("unknown action %q", act)
	})
	if err != nil {
		return "", err
	}
	next := "when the run is resumed"
	if out.Live {
		next = "now (the run is going on)"
	}
	switch act {
	case actApprove:
		return s.gateOutcome(runID, target, by), nil
	case actRetry:
		return fmt.Sprintf("node %s reset by %s: it runs again %s", target, by, next), nil
	case actCertify:
		return fmt.Sprintf("zone %s certified by %s: the next zone's nodes start %s", target, by, next), nil
	}
	return fmt.Sprintf("node %s marked done by %s: %s; what waits for it starts %s", target, by, text, next), nil
}

// openLog opens the JSON log where an action written here logs and
// anchors the journal head: beside the state file, or Options.LogPath
// with a Backend (none when not given).
func (s *Server) openLog(string) (*zap.Logger, func(), error) {
	if s.opts.Backend != nil && s.opts.LogPath == "" {
		return zap.NewNop(), func() {}, nil
	}
	return operate.OpenLogFile(s.logPath())
}

// gateOutcome says whether an approval opened the gate.
func (s *Server) gateOutcome(runID, node, by string) string {
	d, err := s.loadFresh(runID, false)
	if err == nil {
		for _, g := range d.Crisis.Gates {
			if g.Node == node {
				return fmt.Sprintf("approval of %s by %s recorded: %d of %d; another, distinct approver must approve", node, by, len(g.Approvers), g.Needed)
			}
		}
	}
	return fmt.Sprintf("node %s approved by %s", node, by)
}

var errBadInput = errors.New("bad input")

// statusOf maps an error to its HTTP status: 404 for an unknown run or
// node, 409 for an action that does not apply, 400 for bad input.
func statusOf(err error) int {
	switch {
	case errors.Is(err, state.ErrRunNotFound), errors.Is(err, state.ErrNodeNotFound), errors.Is(err, state.ErrZoneNotFound):
		return http.StatusNotFound
	case errors.Is(err, state.ErrNotWaiting), errors.Is(err, state.ErrAlreadyApproved), errors.Is(err, state.ErrNotApplicable),
		errors.Is(err, state.ErrTampered), errors.Is(err, errNotApplicable):
		return http.StatusConflict
	case errors.Is(err, errBadInput):
		return http.StatusBadRequest
	case errors.Is(err, errNoResume):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func since(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return view.FormatDuration(now.Sub(t).Round(time.Second)) + " ago"
}

// load is loadFresh shared among the pages of the same moment (modelCache).
// The data it returns is only read.
func (s *Server) load(runID string, journal bool) (*runData, error) {
	return s.models.get(runID, journal, func() (*runData, error) { return s.loadFresh(runID, journal) })
}
