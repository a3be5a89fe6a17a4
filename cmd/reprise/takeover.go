package main

import (
	"context"
	"fmt"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// sessionAuth is who a run session (run, resume, retry) acts for, as
// decided when it started, kept to decide again when it takes a run over
// as a standby: a standby may wait for months, and the operator whose
// token it was given may have been revoked, given a new token, or had
// their role lowered meanwhile.
type sessionAuth struct {
	statePath string
	act       auth.Action
	// by is the name the session journals: the token's operator on an
	// etcd state with operators, else the --by.
	by string
	// op is the operator the token was found to be at the start ("": the
	// state had no operators then, or is a file).
	op string
	// token is the operator's token as read at the start, in memory only
	// (never written, never put back in the environment: takeTokenEnv);
	// "" without one.
	token string
}

// authorizeSession is authorizeState for the sessions a standby may run
// (run, resume): it makes the same decision, and keeps what it needs to
// make it again at a takeover (recheck). The token is read once, here: a
// file it was read from (REPRISE_TOKEN_FILE, a pipe from the dashboard)
// is not read again.
func authorizeSession(statePath, what string, act auth.Action, by string) (*sessionAuth, error) {
	a := &sessionAuth{statePath: statePath, act: act, by: by}
	if !etcdconn.IsURL(statePath) {
		return a, nil
	}
	st, err := openEtcd(statePath, true)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	read := false
	token := func() (string, error) {
		t, err := operatorToken()
		a.token, read = t, err == nil
		return t, err
	}
	if a.by, err = authorizeWith(st.Operators, token, statePath, what, act, by); err != nil {
		return nil, err
	}
	if read && a.token != "" {
		a.op = a.by
	} else if !read {
		// No operators: the token was not needed, nor read. Read it now
		// (if given) for a takeover on operators added meanwhile; one
		// that cannot be read is no token.
		a.token, _ = operatorToken()
	}
	return a, nil
}

// authorizeRetry is what a retry (authorizeDirect decided it, journaled
// as by) keeps to decide again if it takes the run over as a standby.
func authorizeRetry(statePath, by string) *sessionAuth {
	a := &sessionAuth{statePath: statePath, act: auth.ActRetry, by: by}
	if etcdconn.IsURL(statePath) {
		a.token, _ = operatorToken()
		if a.token != "" {
			a.op = by
		}
	}
	return a
}

// recheck decides again, when this standby has won the lead of target
// (`run R of graph G`) after waiting for it, whether it may go on: the
// same token, against the operators now in etcd, must still be one's who
// may do a.act. It only reads; refused, the caller writes nothing and
// gives the lead up. On a state file, or an etcd state without operators,
// nothing is checked. On success a.by is the name to journal and a.op the
// operator (the same as at the start, or the token's operator if the
// state had no operators then), whose authority is then watched while
// this coordinator leads (watchAuthority).
func (a *sessionAuth) recheck(target, runID string) error {
	if a == nil || !etcdconn.IsURL(a.statePath) {
		return nil
	}
	st, err := openEtcd(a.statePath, true)
	if err != nil {
		return fmt.Errorf("standby: taking over %s: %w", target, err)
	}
	defer st.Close()
	ops, err := st.Operators()
	if err != nil {
		return fmt.Errorf("standby: taking over %s: read the operators of %s: %w", target, a.statePath, err)
	}
	if len(ops) == 0 {
		return nil
	}
	resume := "`reprise resume` with the token of an operator who may " + string(a.act)
	if runID != "" {
		resume = "`reprise resume " + runID + "` with the token of an operator who may " + string(a.act)
	}
	w, op := a.withdrawn(ops, "this standby")
	if w != nil {
		return fmt.Errorf("standby: taking over %s on %s: refused: %s; this standby wrote nothing to the run and gave the lead up (another standby may take over); %s (role %s) goes on with it",
			target, a.statePath, w.text, resume, rolesFor(a.act))
	}
	a.by, a.op = op.Name, op.Name
	return nil
}

// withdrawal is why a session's operator may no longer do its action:
// text says it ("operator amy was revoked since this coordinator started
// (…)"), why in a word for the journal's data.
type withdrawal struct {
	text, why string
}

// withdrawn decides, against ops (not empty), whether a's token is still
// one of an operator who may do a.act: nil and that operator if it is;
// else why not, said of session ("this standby", "this coordinator").
// The token is checked against the argon2id hashes (auth.Checker).
func (a *sessionAuth) withdrawn(ops []state.Operator, session string) (*withdrawal, state.Operator) {
	if a.token == "" {
		return &withdrawal{"this state has operators (added since " + session + " started) and " + session + " was given no operator's token", "no-token"}, state.Operator{}
	}
	checker := &auth.Checker{Operators: func() ([]state.Operator, error) { return ops, nil }}
	op, err := checker.Check(a.token)
	if err != nil {
		if a.op == "" {
			return &withdrawal{"its token is no operator's (unknown or revoked token)", "unknown-token"}, state.Operator{}
		}
		for _, o := range ops {
			if o.Name == a.op {
				return &withdrawal{fmt.Sprintf("operator %s's token was revoked since %s started (%s was given a new one)", a.op, session, a.op), "new-token"}, state.Operator{}
			}
		}
		return &withdrawal{fmt.Sprintf("operator %s was revoked since %s started (no longer among the operators)", a.op, session), "revoked"}, state.Operator{}
	}
	if !auth.Role(op.Role).Can(a.act) {
		return &withdrawal{fmt.Sprintf("operator %s is now role %s, who may not %s", op.Name, op.Role, a.act), "role"}, state.Operator{}
	}
	return nil, op
}

// checkWork refuses to take run over when its work in etcd was written by
// a coordinator of another protocol version (cluster.CheckWorkProtocol),
// before anything is written.
func (co *coordinator) checkWork(ctx context.Context, run string) error {
	if co == nil {
		return nil
	}
	return cluster.CheckWorkProtocol(ctx, co.cli, cluster.NewKeys(co.u.Root()), run)
}
