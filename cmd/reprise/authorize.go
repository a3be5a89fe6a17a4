package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
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

// operatorsChecked, when set (by tests only), is called with the change
// between its check and its write to etcd (changeOperators).
var operatorsChecked func(change string)

// operatorsAttempts is how many times changeOperators reads, checks and
// writes a change before it gives up because the operators keep changing.
const operatorsAttempts = 5

// operatorWriter writes a change of the operators.
type operatorWriter interface {
	PutOperator(state.Operator) error
	DeleteOperator(name string) error
}

// casOperators keeps operators whose changes may be conditional on a read:
// etcd's (etcdstate.Store).
type casOperators interface {
	OperatorsAt() ([]state.Operator, int64, error)
	PutOperatorIf(op state.Operator, rev int64) error
	DeleteOperatorIf(name string, rev int64) error
}

// casWriter writes to st only if the operators have not changed since
// revision rev, else fails with etcdstate.ErrOperatorsChanged.
type casWriter struct {
	st  casOperators
	rev int64
}

func (w casWriter) PutOperator(op state.Operator) error { return w.st.PutOperatorIf(op, w.rev) }
func (w casWriter) DeleteOperator(name string) error    { return w.st.DeleteOperatorIf(name, w.rev) }

// changeOperators decides whether this process may change the operators
// kept at statePath (st is open on it) and makes the change: change names
// it for messages (`operators add "bob"`), after is the operators it
// leaves, write makes it through w, knowing who makes it (by). It returns
// by, the admin who makes the change, "" when no token is needed:
//
//   - a state file is this machine's (0600): whoever may open it manages
//     its operators, as they may read it; write goes straight to it;
//   - on an etcd state with no operators, the first one is added without
//     a token (bootstrap): whoever reaches etcd before anyone may;
//   - on an etcd state that has operators, the change needs the token
//     (token: REPRISE_TOKEN, REPRISE_TOKEN_FILE) of an operator whose role
//     is admin, and may not leave operators with no admin among them
//     (nobody could manage them after).
//
// On etcd the decision and the write are a compare-and-swap: the
// operators are read with the revision they were read at, the decision is
// made on them, and the write is one transaction that fails if any change
// of the operators was made since (etcdstate.PutOperatorIf). If it fails,
// they are read again and the change decided again (operatorsAttempts
// times at most): of two admins revoking each other at once, the second is
// refused (its token is revoked); of two changes that each leave an admin
// but not both, the second is refused (no admin left); of two first
// operators added at once, the second needs an admin's token. Not covered:
// a write to the operators' keys made with an etcd client directly (it
// does not put the guard). A write whose answer etcd did not give in time
// is retried (etcdstate) and, if it had gone through, recognises itself by
// the change id it put in the guard, and is reported done; only when
// another change came between the lost answer and the retry is it decided
// again (an add is then written again, with the same token; a revoke finds
// the operator gone and says so).
//
// A refusal exits 1 and says why; a token file that cannot be read is a
// usage error (exit 2).
func changeOperators(statePath string, st operatorStore, token func() (string, error), change string,
	after func([]state.Operator) []state.Operator, write func(by string, w operatorWriter) error) (string, error) {
	if !etcdconn.IsURL(statePath) {
		return "", write("", st)
	}
	cas, ok := st.(casOperators)
	if !ok {
		return "", fmt.Errorf("%s: %s: no conditional write to its operators", change, statePath)
	}
	for n := 1; ; n++ {
		ops, rev, err := cas.OperatorsAt()
		if err != nil {
			return "", fmt.Errorf("%s: read the operators: %w", change, err)
		}
		by, err := authorizeOperators(ops, token, change, after)
		if err != nil {
			return "", err
		}
		if operatorsChecked != nil {
			operatorsChecked(change)
		}
		err = write(by, casWriter{st: cas, rev: rev})
		if err == nil {
			return by, nil
		}
		if !errors.Is(err, etcdstate.ErrOperatorsChanged) {
			return "", err
		}
		if n == operatorsAttempts {
			return "", fmt.Errorf("%s: the operators changed each time it was checked (%d times): nothing written, try again", change, n)
		}
	}
}

// authorizeOperators decides whether a change of the operators ops of an
// etcd state may be made (changeOperators says by whom): after is the
// operators the change leaves. It returns the admin who makes the change,
// "" when ops is empty (the first operator needs no token).
func authorizeOperators(ops []state.Operator, token func() (string, error), change string, after func([]state.Operator) []state.Operator) (string, error) {
	if len(ops) == 0 {
		return "", nil
	}
	tok, err := token()
	if err != nil {
		return "", withCode(exitUsage, err)
	}
	if tok == "" {
		return "", fmt.Errorf("%s: refused: this state has operators: changing them through etcd needs an admin's token (REPRISE_TOKEN or REPRISE_TOKEN_FILE)", change)
	}
	checker := &auth.Checker{Operators: func() ([]state.Operator, error) { return ops, nil }}
	op, err := checker.Check(tok)
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

// The roles' actions of the commands that write an etcd state themselves
// (authorizeState), picked among internal/auth's:
//
//   - run and resume, and a standby coordinator (run or resume --standby),
//     which is one of them: ActResume, what the dashboard's resume needs:
//     they start or continue the steps that rebuild the systems
//     (operator, admin). A standby is decided at its start and again when
//     it takes over (sessionAuth, takeover.go);
//   - restore-point and cleanup: ActRestorePoint and ActCleanup, the
//     admin's only. restore-point --use overrides a point's scan verdict,
//     deciding what data a system comes back with; cleanup closes a drill
//     for good (it can no longer be resumed). Neither is a retry, a mark
//     or a gate's approval, and no role below admin is granted anything
//     of the kind;
//   - operators list: ActView, what every role may (it shows names, roles
//     and who added them, never a token or its hash).
const (
	actRun          = auth.ActResume
	actRestorePoint = auth.ActRestorePoint
	actCleanup      = auth.ActCleanup
	actListOps      = auth.ActView
)

// authorizeState decides whether this process may do what (a command:
// "run", "resume", "restore-point", "cleanup", "operators list") on the
// state at statePath, which needs act, and returns the name it is
// journaled with:
//
//   - a state file is this machine's (0600): whoever may open it acts, and
//     by (the --by, or "") is journaled, as before;
//   - an etcd state without operators: by as well (bootstrap: access to
//     etcd, its client certificates, is the boundary);
//   - an etcd state with operators: every command is a remote action; it
//     needs the token (REPRISE_TOKEN, REPRISE_TOKEN_FILE) of an operator
//     whose role allows act, and that operator's name is journaled (a by
//     naming someone else is refused, as authorizeDirect does).
//
// It only reads the operators: a refusal (exit 1) has written nothing. A
// token file that cannot be read is a usage error (exit 2).
func authorizeState(statePath, what string, act auth.Action, by string) (string, error) {
	if !etcdconn.IsURL(statePath) {
		return by, nil
	}
	st, err := openEtcd(statePath, true)
	if err != nil {
		return "", err
	}
	defer st.Close()
	return authorizeWith(st.Operators, operatorToken, statePath, what, act, by)
}

// authorizeWith is authorizeState's decision on an etcd state whose
// operators are read by operators, with the token token returns.
func authorizeWith(operators func() ([]state.Operator, error), token func() (string, error), statePath, what string, act auth.Action, by string) (string, error) {
	ops, err := operators()
	if err != nil {
		return "", fmt.Errorf("%s on %s: read the operators: %w", what, statePath, err)
	}
	if len(ops) == 0 {
		return by, nil
	}
	tok, err := token()
	if err != nil {
		return "", withCode(exitUsage, err)
	}
	refused := func(format string, args ...any) error {
		return fmt.Errorf("%s on %s: refused: %s", what, statePath, fmt.Sprintf(format, args...))
	}
	if tok == "" {
		return "", refused("this state has operators: it needs the token of an operator who may %s (role %s) in REPRISE_TOKEN or REPRISE_TOKEN_FILE",
			act, rolesFor(act))
	}
	checker := &auth.Checker{Operators: func() ([]state.Operator, error) { return ops, nil }}
	op, err := checker.Check(tok)
	if err != nil {
		return "", refused("token: %v", err)
	}
	if !auth.Role(op.Role).Can(act) {
		return "", refused("operator %s (role %s) may not %s: that needs role %s", op.Name, op.Role, act, rolesFor(act))
	}
	if by != "" && by != op.Name {
		return "", refused("--by %q but the token is operator %s's: it is journaled with its token's operator", by, op.Name)
	}
	return op.Name, nil
}

// rolesFor names the roles that may do act: "operator or admin".
func rolesFor(act auth.Action) string {
	var rs []string
	for _, r := range auth.Roles {
		if r.Can(act) {
			rs = append(rs, string(r))
		}
	}
	switch len(rs) {
	case 0:
		return "none"
	case 1:
		return rs[0]
	}
	return strings.Join(rs[:len(rs)-1], ", ") + " or " + rs[len(rs)-1]
}
