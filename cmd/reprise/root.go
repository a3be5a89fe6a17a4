package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes of the reprise command (README.md, "Exit codes").
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitFailedNodes = 3
	// exitBrokenJournal: report and log wrote everything, but the journal's
	// hash chain is broken.
	exitBrokenJournal = 3
	exitParked        = 4
	exitInterrupted   = 130
)

// exitCodeError carries an exit code through cobra; the message (if any)
// has already been printed or is printed by run.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// withCode wraps err (which may be nil: nothing more to print) so that run
// exits with code.
func withCode(code int, err error) error { return &exitCodeError{code: code, err: err} }

// usageError marks a usage problem (exit 2).
func usageError(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// subcommands returns every subcommand of reprise: the one list of them (a
// new command's file adds its constructor here).
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newValidateCmd(), newPlanCmd(), newGraphCmd(), newPluginsCmd(), newPluginServeCmd(),
		newRunCmd(), newResumeCmd(), newRetryCmd(), newApproveCmd(), newMarkCmd(), newCleanupCmd(),
		newStatusCmd(), newRunsCmd(), newLogCmd(), newReportCmd(), newOperatorsCmd(),
		newRestorePointCmd(), newCertifyCmd(), newServeCmd(), newStateCmd(), newAgentCmd(),
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "reprise",
		Short: "Rebuild an information system from its dependency graph",
		Long: `reprise rebuilds an information system after a disaster (a hospital after a
ransomware attack) by walking a dependency graph and running each node's
restore step through a plugin, with durable, resumable run state.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetVersionTemplate("reprise {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withCode(exitUsage, err)
	})
	// A runnable root checks its own arguments (an unknown command is a
	// usage error of ours, not cobra's text) and shows the help without.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %q?)", closest(args[0], s))
		}
		return usageError("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)
	}
	root.SuggestionsMinimumDistance = 2
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.AddCommand(subcommands()...)
	usageArgs(root)
	return root
}

// usageArgs makes the argument checks of c's subcommands, at any depth,
// return usage errors (exit 2).
func usageArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if check := sub.Args; check != nil {
			sub.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					var ce *exitCodeError
					if errors.As(err, &ce) {
						return err
					}
					return withCode(exitUsage, err)
				}
				return nil
			}
		}
		usageArgs(sub)
	}
}

// run executes the command line and maps the error to an exit code: the one
// place where reprise prints an error.
func run(args []string) int {
	takeTokenEnv()
	root := newRootCmd()
	root.SetArgs(args)
	code, err := exitCodeOf(root.Execute())
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprise: %v\n", explainEtcd(err))
		if code == exitUsage {
			fmt.Fprintln(os.Stderr, "Run 'reprise --help' for usage.")
		}
	}
	return code
}

// exitCodeOf maps a command's error to its exit code and to the error left
// to print (nil when the command already printed what it had to say). Usage
// errors carry exitUsage by type: flag errors (SetFlagErrorFunc), argument
// checks (usageArgs), unknown commands (the root's Args) and the commands'
// own usageError.
func exitCodeOf(err error) (int, error) {
	if err == nil {
		return exitOK, nil
	}
	var ce *exitCodeError
	if errors.As(err, &ce) {
		return ce.code, ce.err
	}
	return exitError, err
}
