package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// operatorStore is where operators are kept: the state file, or the control
// socket of the process that holds it.
type operatorStore interface {
	Operators() ([]state.Operator, error)
	PutOperator(state.Operator) error
	DeleteOperator(name string) error
}

// openOperators opens the state file for writing, or the control socket of
// the reprise process that holds it.
func openOperators(path, who string) (operatorStore, func(), error) {
	st, err := openStore(path, who)
	if err == nil {
		return st, func() { st.Close() }, nil
	}
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		return nil, nil, err
	}
	c, cerr := control.Dial(control.SocketPath(path))
	if cerr != nil {
		return nil, nil, fmt.Errorf("%w; and its control socket does not answer: %v", err, cerr)
	}
	return c, func() {}, nil
}

func newOperatorsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "operators",
		Short: "Manage who may use the web dashboard (reprise serve) and its API",
		Long: `Operators log in to the dashboard and call its API with a token. Each has a
role: viewer (sees), operator (also retries, marks, resumes), approver (sees,
opens gates, certifies zones), admin (everything, and manages operators).
A token is printed once, when the operator is added; the state file keeps
only its argon2id hash. Adding a name again gives a new token and revokes
the old one.

On a state file, whoever may open the file manages its operators. On an
etcd state, the first operator is added without a token (make it an admin);
once it has operators, add and revoke need an admin's token (REPRISE_TOKEN,
or the file REPRISE_TOKEN_FILE names), and the operator added records that
admin; list needs any operator's token.`,
	}
	c.AddCommand(newOperatorsAddCmd(), newOperatorsListCmd(), newOperatorsRevokeCmd())
	return c
}

// operatorsOptions are the options of `reprise operators add|list|revoke`.
type operatorsOptions struct {
	// StatePath is the state file (--state).
	StatePath string
	// Name is the operator's name (add, revoke).
	Name string
	// Role is the operator's role (add): viewer, operator, approver or
	// admin.
	Role string
	// token returns the token that authorizes a change on etcd; nil:
	// operatorToken (REPRISE_TOKEN, REPRISE_TOKEN_FILE). Tests set it.
	token func() (string, error)
}

// tokenFunc returns how opts reads the operator's token.
func (opts operatorsOptions) tokenFunc() func() (string, error) {
	if opts.token != nil {
		return opts.token
	}
	return operatorToken
}

// runOperatorsAdd adds operator opts.Name with opts.Role (or gives them a
// new token, revoking the old one) in the state file, or through the
// control socket of the process that holds it, and returns the operator
// and the token, which nothing keeps. A bad role or name is a usage error.
// On an etcd state that has operators, it needs an admin's token
// (changeOperators), and the operator records that admin as who added
// them.
func runOperatorsAdd(_ context.Context, opts operatorsOptions) (state.Operator, string, error) {
	if opts.Role == "" {
		return state.Operator{}, "", usageError("operators add: --role is required (viewer, operator, approver or admin)")
	}
	r, err := auth.ParseRole(opts.Role)
	if err != nil {
		return state.Operator{}, "", usageError("operators add: --role: %v", err)
	}
	if err := auth.ValidName(opts.Name); err != nil {
		return state.Operator{}, "", usageError("operators add: %v", err)
	}
	st, closeFn, err := openOperators(opts.StatePath, holder("operators", "add", opts.Name))
	if err != nil {
		return state.Operator{}, "", err
	}
	defer closeFn()
	// The token is made once, at the first write: a write retried after
	// the operators changed (changeOperators) stores the same one.
	var op state.Operator
	var token string
	by, err := changeOperators(opts.StatePath, st, opts.tokenFunc(), fmt.Sprintf("operators add %q", opts.Name), func(ops []state.Operator) []state.Operator {
		return append(without(ops, opts.Name), state.Operator{Name: opts.Name, Role: string(r)})
	}, func(by string, w operatorWriter) error {
		if token == "" {
			o, t, err := auth.NewOperator(opts.Name, r, by, time.Now())
			if err != nil {
				return err
			}
			op, token = o, t
		}
		op.CreatedBy = by
		if by == "" {
			op.CreatedBy = operatorName()
		}
		if err := w.PutOperator(op); err != nil {
			return fmt.Errorf("add operator %s: %w", op.Name, err)
		}
		return nil
	})
	if err != nil {
		return state.Operator{}, "", err
	}
	if by == "" && etcdconn.IsURL(opts.StatePath) && !r.Can(auth.ActManage) {
		fmt.Fprintf(os.Stderr, "reprise: warning: %s is the first operator of this etcd state and is no admin: "+
			"adding or revoking operators through etcd now needs an admin's token, and there is none\n", opts.Name)
	}
	return op, token, nil
}

// without returns ops less the operator called name.
func without(ops []state.Operator, name string) []state.Operator {
	var out []state.Operator
	for _, op := range ops {
		if op.Name != name {
			out = append(out, op)
		}
	}
	return out
}

// runOperatorsList returns the operators (their tokens' hashes with them:
// the command prints names, roles and who added them). On an etcd state
// that has operators, it needs the token of one of them, any role
// (authorizeWith).
func runOperatorsList(_ context.Context, opts operatorsOptions) ([]state.Operator, error) {
	st, closeFn, err := openOperators(opts.StatePath, holder("operators", "list"))
	if err != nil {
		return nil, err
	}
	defer closeFn()
	ops, err := st.Operators()
	if err != nil || !etcdconn.IsURL(opts.StatePath) {
		return ops, err
	}
	read := func() ([]state.Operator, error) { return ops, nil }
	if _, err := authorizeWith(read, opts.tokenFunc(), opts.StatePath, "operators list", actListOps, ""); err != nil {
		return nil, err
	}
	return ops, nil
}

// runOperatorsRevoke removes operator opts.Name: their token stops
// working at once. On an etcd state it needs an admin's token
// (changeOperators); it returns that admin's name ("" when no token was
// needed).
func runOperatorsRevoke(_ context.Context, opts operatorsOptions) (string, error) {
	st, closeFn, err := openOperators(opts.StatePath, holder("operators", "revoke", opts.Name))
	if err != nil {
		return "", err
	}
	defer closeFn()
	return changeOperators(opts.StatePath, st, opts.tokenFunc(), fmt.Sprintf("operators revoke %q", opts.Name), func(ops []state.Operator) []state.Operator {
		return without(ops, opts.Name)
	}, func(_ string, w operatorWriter) error {
		if err := w.DeleteOperator(opts.Name); err != nil {
			return fmt.Errorf("revoke: %w (list them with `reprise operators list`)", err)
		}
		return nil
	})
}

func newOperatorsAddCmd() *cobra.Command {
	var role string
	var statePath *string
	c := &cobra.Command{
		Use:   "add NAME --role viewer|operator|approver|admin",
		Short: "Add an operator (or give one a new token) and print the token once",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			op, token, err := runOperatorsAdd(c.Context(), operatorsOptions{StatePath: *statePath, Name: args[0], Role: role})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "operator %s added as %s by %s; the token below is shown once, hand it over now:\n", op.Name, op.Role, op.CreatedBy)
			fmt.Fprintln(c.OutOrStdout(), token)
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().StringVar(&role, "role", "", "viewer, operator, approver or admin (required)")
	return c
}

func newOperatorsListCmd() *cobra.Command {
	var statePath *string
	c := &cobra.Command{
		Use:   "list",
		Short: "List the operators and their roles (never their tokens)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ops, err := runOperatorsList(c.Context(), operatorsOptions{StatePath: *statePath})
			if err != nil {
				return err
			}
			if len(ops) == 0 {
				fmt.Fprintln(c.OutOrStdout(), "no operators yet: add one with `reprise operators add NAME --role admin`")
				return nil
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tADDED\tBY")
			for _, op := range ops {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", op.Name, op.Role, op.Created.UTC().Format(time.RFC3339), op.CreatedBy)
			}
			return w.Flush()
		},
	}
	statePath = addStateFlag(c)
	return c
}

func newOperatorsRevokeCmd() *cobra.Command {
	var statePath *string
	c := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an operator: their token stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			by, err := runOperatorsRevoke(c.Context(), operatorsOptions{StatePath: *statePath, Name: args[0]})
			if err != nil {
				return err
			}
			if by != "" {
				fmt.Fprintf(c.OutOrStdout(), "operator %s revoked by admin %s\n", args[0], by)
			} else {
				fmt.Fprintf(c.OutOrStdout(), "operator %s revoked\n", args[0])
			}
			return nil
		},
	}
	statePath = addStateFlag(c)
	return c
}
