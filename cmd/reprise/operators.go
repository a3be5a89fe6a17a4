package main

import (
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

func newOperatorsAddCmd() *cobra.Command {
	var role string
	var statePath *string
	c := &cobra.Command{
		Use:   "add NAME --role viewer|operator|approver|admin",
		Short: "Add an operator (or give one a new token) and print the token once",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if role == "" {
				return usageError("operators add: --role is required (viewer, operator, approver or admin)")
			}
			r, err := auth.ParseRole(role)
			if err != nil {
				return usageError("operators add: --role: %v", err)
			}
			if err := auth.ValidName(args[0]); err != nil {
				return usageError("operators add: %v", err)
			}
			op, token, err := auth.NewOperator(args[0], r, operatorName(), time.Now())
			if err != nil {
				return err
			}
			st, closeFn, err := openOperators(*statePath, holder("operators", "add", args[0]))
			if err != nil {
				return err
			}
			defer closeFn()
			if err := st.PutOperator(op); err != nil {
				return fmt.Errorf("add operator %s: %w", op.Name, err)
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
			st, closeFn, err := openOperators(*statePath, holder("operators", "list"))
			if err != nil {
				return err
			}
			defer closeFn()
			ops, err := st.Operators()
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
			st, closeFn, err := openOperators(*statePath, holder("operators", "revoke", args[0]))
			if err != nil {
				return err
			}
			defer closeFn()
			if err := st.DeleteOperator(args[0]); err != nil {
				return fmt.Errorf("revoke: %w (list them with `reprise operators list`)", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "operator %s revoked\n", args[0])
			return nil
		},
	}
	statePath = addStateFlag(c)
	return c
}
