package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/auth"
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
the old one.`,
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
}

// runOperatorsAdd adds operator opts.Name with opts.Role (or gives them a
// new token, revoking the old one) in the state file, or through the
// control socket of the process that holds it, and returns the operator
// and the token, which nothing keeps. A bad role or name is a usage error.
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
	op, token, err := auth.NewOperator(opts.Name, r, operatorName(), time.Now())
	if err != nil {
		return state.Operator{}, "", err
	}
	st, closeFn, err := openOperators(opts.StatePath, holder("operators", "add", opts.Name))
	if err != nil {
		return state.Operator{}, "", err
	}
	defer closeFn()
	if err := st.PutOperator(op); err != nil {
		return state.Operator{}, "", fmt.Errorf("add operator %s: %w", op.Name, err)
	}
	return op, token, nil
}

// runOperatorsList returns the operators (their tokens' hashes with them:
// the command prints names, roles and who added them).
func runOperatorsList(_ context.Context, opts operatorsOptions) ([]state.Operator, error) {
	st, closeFn, err := openOperators(opts.StatePath, holder("operators", "list"))
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return st.Operators()
}

// runOperatorsRevoke removes operator opts.Name: their token stops
// working at once.
func runOperatorsRevoke(_ context.Context, opts operatorsOptions) error {
	st, closeFn, err := openOperators(opts.StatePath, holder("operators", "revoke", opts.Name))
	if err != nil {
		return err
	}
	defer closeFn()
	if err := st.DeleteOperator(opts.Name); err != nil {
		return fmt.Errorf("revoke: %w (list them with `reprise operators list`)", err)
	}
	return nil
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
			fmt.Fprintf(c.ErrOrStderr(), "operator %s added as %s; the token below is shown once, hand it over now:\n", op.Name, op.Role)
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
			if err := runOperatorsRevoke(c.Context(), operatorsOptions{StatePath: *statePath, Name: args[0]}); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "operator %s revoked\n", args[0])
			return nil
		},
	}
	statePath = addStateFlag(c)
	return c
}
