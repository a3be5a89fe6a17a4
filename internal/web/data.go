package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/crisis"
)

// runData is one run as a page or the API shows it.
type runData struct {
	M      *view.Model
	Crisis crisis.View
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
	return &runData{M: m, Crisis: cv}, nil
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

// action is what an operator does to a node.
type action string

const (
	actApprove action = "approve"
	actRetry   action = "retry"
	actMark    action = "mark"
)

// do performs act on node of run as op, journaled with op's name. A run
// going on in another process takes approvals through its control socket;
// retry and mark need the run stopped (409 otherwise).
func (s *Server) do(ctx context.Context, act action, runID, node string, op state.Operator, text string) (string, error) {
	defer s.models.forget(runID) // the next page shows what the action did
	by := op.Name
	st, err := s.openWriter(fmt.Sprintf("reprise serve: %s %s by %s", act, node, by))
	var locked *state.LockedError
	if errors.As(err, &locked) {
		if act != actApprove {
			return "", fmt.Errorf("%s node %q of run %q: the run is going on in another process (%v): %s it once it has stopped: %w",
				act, node, runID, locked.Holder.Command, act, errNotApplicable)
		}
		c, cerr := control.Dial(control.SocketPath(s.opts.StatePath))
		if cerr != nil {
			return "", fmt.Errorf("%w; and its control socket does not answer: %v", err, cerr)
		}
		if err := c.Approve(ctx, runID, node, by, text); err != nil {
			return "", err
		}
		return s.gateOutcome(runID, node, by), nil
	}
	if err != nil {
		return "", err
	}
	e := engine.New(st, host.New(host.Options{}), engine.Options{})
	switch act {
	case actApprove:
		err = e.Approve(ctx, runID, node, by, text)
	case actRetry:
		var ids []string
		ids, err = e.ResetNodes(ctx, runID, node, false, by)
		if err == nil && len(ids) == 0 {
			err = fmt.Errorf("retry node %q of run %q: it is pending already: %w", node, runID, errNotApplicable)
		}
	case actMark:
		if strings.TrimSpace(text) == "" {
			st.Close()
			return "", fmt.Errorf("mark node %q: a reason is required: %w", node, errBadInput)
		}
		err = e.Mark(ctx, runID, node, by, text)
	}
	st.Close()
	if err != nil {
		return "", err
	}
	switch act {
	case actApprove:
		return s.gateOutcome(runID, node, by), nil
	case actRetry:
		return fmt.Sprintf("node %s reset by %s: it runs again at the next `reprise resume %s`", node, by, runID), nil
	}
	return fmt.Sprintf("node %s marked done by %s: %s", node, by, text), nil
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
	case errors.Is(err, state.ErrRunNotFound), errors.Is(err, state.ErrNodeNotFound):
		return http.StatusNotFound
	case errors.Is(err, state.ErrNotWaiting), errors.Is(err, state.ErrAlreadyApproved), errors.Is(err, engine.ErrBusy),
		errors.Is(err, engine.ErrCleanedUp), errors.Is(err, errNotApplicable):
		return http.StatusConflict
	case errors.Is(err, errBadInput):
		return http.StatusBadRequest
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
