package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
)

// operatorName is who runs the command, for the journal: $USER, else "operator".
func operatorName() string {
	for _, k := range []string{"REPRISE_OPERATOR", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "operator"
}

func newMarkCmd() *cobra.Command {
	var done, quiet bool
	var reason, by string
	var statePath *string
	c := &cobra.Command{
		Use:   "mark RUN NODE --done --reason TEXT",
		Short: "Record an operator's override: a node is done although its step did not succeed",
		Long: `Mark a node done (succeeded) by hand, for a reason that the journal keeps with
who and when: for a step restored outside reprise, or a failure judged
harmless. Its dependents run at the next resume. The run must not be running.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if !done {
				return usageError("mark: --done is required (the only override there is)")
			}
			if reason == "" {
				return usageError("mark: --reason is required: say why, the journal keeps it")
			}
			if by == "" {
				by = operatorName()
			}
			st, err := openStore(*statePath, holder("mark", args[0], args[1]))
			if err != nil {
				return err
			}
			defer st.Close()
			if err := refuseLive(st, args[0]); err != nil {
				return err
			}
			log, closeLog, err := openLog(*statePath)
			if err != nil {
				return err
			}
			defer closeLog()
			e := engine.New(st, host.New(host.Options{}), engine.Options{Logger: log})
			if err := e.Mark(c.Context(), args[0], args[1], by, reason); err != nil {
				return err
			}
			if quiet {
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "node %s of run %s marked done by %s: %s\ncontinue with `reprise resume %s`\n",
				args[1], args[0], by, reason, args[0])
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().BoolVar(&done, "done", false, "mark the node done (succeeded)")
	c.Flags().StringVar(&reason, "reason", "", "why (required; kept in the journal)")
	c.Flags().StringVar(&by, "by", "", "who decides (default: $USER)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return c
}
