package main

import (
	"fmt"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// authorizeDirect decides whether an operator's command that no
// coordinator took (approve, certify, mark, retry: sendThroughCluster
// returned sent false) may be written to the state by this process, and
// returns the name it is journaled with. It makes the decision a
// coordinator makes (authorizeCommand), against the same operators:
//
//   - on an etcd state, every command is a remote action: once the state
//     has operators, it needs the token (REPRISE_TOKEN, REPRISE_TOKEN_FILE)
//     of one whose role allows it, and is journaled with that operator's
//     name (a --by naming someone else is refused); without operators,
//     cmd.By is journaled, as before;
//   - a state file is this machine's (0600, one writer, its control socket
//     0600 too): whoever may open it acts, and fileBy (the --by, or its
//     default) is journaled.
//
// A refusal exits 1 and says why, as a coordinator's does; a token file
// that cannot be read is a usage error (exit 2).
func authorizeDirect(statePath string, cmd cluster.Command, fileBy string) (string, error) {
	if !etcdconn.IsURL(statePath) {
		return fileBy, nil
	}
	token, err := operatorToken()
	if err != nil {
		return "", withCode(exitUsage, err)
	}
	st, err := openEtcd(statePath, true)
	if err != nil {
		return "", err
	}
	defer st.Close()
	by, err := authorizeCommand(st.Operators, &auth.Checker{Operators: st.Operators}, cmd, token)
	if err != nil {
		return "", fmt.Errorf("%s (no coordinator leads the run: written to etcd here): refused: %w", commandTarget(cmd), err)
	}
	if by == "" {
		return "", fmt.Errorf("%s: refused: it says nobody: the journal needs who asks (--by)", commandTarget(cmd))
	}
	return by, nil
}

// commandTarget names what cmd acts on, for messages: `approve node
// "gate" of run R`.
func commandTarget(cmd cluster.Command) string {
	if cmd.Zone != "" {
		return fmt.Sprintf("%s zone %q of run %s", cmd.Op, cmd.Zone, cmd.Run)
	}
	return fmt.Sprintf("%s node %q of run %s", cmd.Op, cmd.Node, cmd.Run)
}

// authorizeOperators decides whether this process may change the
// operators kept at statePath (st is open on it): change names the change
// for messages (`operators add "bob"`), after is the operators the change
// leaves. It returns the admin who makes the change, "" when no token is
// needed:
//
//   - a state file is this machine's (0600): whoever may open it manages
//     its operators, as they may read it;
//   - on an etcd state with no operators, the first one is added without
//     a token (bootstrap): whoever reaches etcd before anyone may;
//   - on an etcd state that has operators, the change needs the token
//     (REPRISE_TOKEN, REPRISE_TOKEN_FILE) of an operator whose role is
//     admin, and may not leave operators with no admin among them (nobody
//     could manage them after).
//
// A refusal exits 1 and says why; a token file that cannot be read is a
// usage error (exit 2). The check and the write are two requests to etcd:
// an admin revoked in between still makes this one change.
func authorizeOperators(statePath string, st operatorStore, change string, after func([]state.Operator) []state.Operator) (string, error) {
	if !etcdconn.IsURL(statePath) {
		return "", nil
	}
	ops, err := st.Operators()
	if err != nil {
		return "", fmt.Errorf("%s: read the operators: %w", change, err)
	}
	if len(ops) == 0 {
		return "", nil
	}
	token, err := operatorToken()
	if err != nil {
		return "", withCode(exitUsage, err)
	}
	if token == "" {
		return "", fmt.Errorf("%s: refused: this state has operators: changing them through etcd needs an admin's token (REPRISE_TOKEN or REPRISE_TOKEN_FILE)", change)
	}
	checker := &auth.Checker{Operators: func() ([]state.Operator, error) { return ops, nil }}
	op, err := checker.Check(token)
	if err != nil {
		return "", fmt.Errorf("%s: refused: token: %w", change, err)
	}
	if !auth.Role(op.Role).Can(auth.ActManage) {
		return "", fmt.Errorf("%s: refused: operator %s (role %s) may not %s", change, op.Name, op.Role, auth.ActManage)
	}
	if left := after(ops); len(left) > 0 && !hasAdmin(left) {
		return "", fmt.Errorf("%s: refused: it would leave no admin among the operators, and nobody could manage them after", change)
	}
	return op.Name, nil
}

// hasAdmin reports whether one of ops may manage operators.
func hasAdmin(ops []state.Operator) bool {
	for _, op := range ops {
		if auth.Role(op.Role).Can(auth.ActManage) {
			return true
		}
	}
	return false
}
