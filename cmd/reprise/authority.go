package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
)

// operatorsWatcher is an etcd state's side of the operators a leading
// coordinator watches (etcdstate.Store).
type operatorsWatcher interface {
	OperatorsAt() ([]state.Operator, int64, error)
	WatchOperators(ctx context.Context, rev int64) <-chan struct{}
}

// watchAuthority keeps the session's operator's authority checked while
// this coordinator leads the run: on an etcd state, for a session started
// (or taken over) with an operator's token, it watches the operators in
// etcd (one etcd watch: etcdstate.WatchOperators) and decides again at
// each change, with the token kept in memory (sessionAuth.withdrawn, as a
// standby's takeover does). Once that operator was revoked, given a new
// token or lowered below what the session does, it stops the run
// (authorityWithdrawn). The first decision is made at once, on the
// operators as they are now: a change made since the session was
// authorized is not missed. The watch ends with the session (s.unwatch).
func (s *session) watchAuthority(errw io.Writer) {
	a := s.auth
	w, ok := s.st.(operatorsWatcher)
	if a == nil || a.op == "" || !ok || s.co == nil || s.co.lead == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.unwatch = cancel
	go func() {
		var changes <-chan struct{}
		for {
			ops, rev, err := w.OperatorsAt()
			if err != nil {
				s.log.Warn("read the operators to check the authority of the session's operator: trying again", zap.String("operator", a.op), zap.Error(err))
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				continue
			}
			if len(ops) > 0 { // none: nothing is checked (sessionAuth.recheck)
				if wd, _ := a.withdrawn(ops, "this coordinator"); wd != nil {
					s.authorityWithdrawn(ctx, wd, errw)
					return
				}
			}
			if changes == nil {
				changes = w.WatchOperators(ctx, rev)
			}
			select {
			case <-ctx.Done():
				return
			case _, ok := <-changes:
				if !ok {
					return
				}
			}
		}
	}()
}

// authorityWithdrawn stops the run this coordinator leads, its operator's
// authority withdrawn (wd): it says so on errw, journals it
// (coordinator-stopped, naming the operator), and stops the run as two
// SIGINTs would (runsession.Session.Stop: nothing new starts, the running
// steps are cancelled, the run ends interrupted with every finished step
// kept). The session then ends as after a signal: exit 130, the lead
// given up.
func (s *session) authorityWithdrawn(ctx context.Context, wd *withdrawal, errw io.Writer) {
	a := s.auth
	runID := s.eng.LiveRun()
	name := s.co.lead.Info.Name
	// runID is "" before the run is created, or once it ended: nothing
	// to journal then.
	run, resumeCmd := "", "`reprise resume`"
	if runID != "" {
		run, resumeCmd = "run "+runID+": ", "`reprise resume "+runID+"`"
	}
	resume := fmt.Sprintf("%s with the token of an operator who may %s (role %s) goes on with it", resumeCmd, a.act, rolesFor(a.act))
	fmt.Fprintf(errw, "%soperator %s's authority was withdrawn: %s; coordinator %s starts nothing new, cancels its running steps and gives the lead up: the run is left interrupted, every finished step kept; %s\n",
		run, a.op, wd.text, name, resume)
	if runID != "" {
		e := &state.Entry{Time: time.Now().UTC(), Type: state.EntryCoordinatorStopped,
			Message: fmt.Sprintf("coordinator %s stopped the run: operator %s's authority was withdrawn (%s); it started nothing new and cancelled its running steps; %s",
				name, a.op, wd.text, resume),
			Data: map[string]string{"why": "authority-withdrawn", "operator": a.op, "change": wd.why, "coordinator": name}}
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.st.Apply(jctx, state.Change{RunID: runID, Entry: e})
		cancel()
		if err != nil {
			fmt.Fprintf(errw, "run %s: journal that coordinator %s stopped: %v (it stops all the same)\n", runID, name, err)
		}
	}
	s.log.Warn("the session's operator's authority was withdrawn: stopping the run", zap.String("operator", a.op), zap.String("change", wd.why))
	s.rs.Stop(fmt.Sprintf("operator %s's authority was withdrawn (%s)", a.op, wd.why))
}
