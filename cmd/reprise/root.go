package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the reprise command (README.md, "Exit codes").
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitFailedNodes = 3
	exitParked      = 4
	exitInterrupted = 130
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

// commands holds every subcommand constructor; each subcommand's file
// registers itself in an init function, so that files stay independent.
var commands = map[string]func() *cobra.Command{}

func register(name string, newCmd func() *cobra.Command) {
	if _, dup := commands[name]; dup {
		panic("reprise: command registered twice: " + name)
	}
	commands[name] = newCmd
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
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		root.AddCommand(commands[n]())
	}
	return root
}

// run executes the command line and maps the error to an exit code: the one
// place where reprise prints an error.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	code, err := exitCodeOf(root.Execute())
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprise: %v\n", err)
		if code == exitUsage {
			fmt.Fprintln(os.Stderr, "Run 'reprise --help' for usage.")
		}
	}
	return code
}

// exitCodeOf maps a command's error to its exit code and to the error left
// to print (nil when the command already printed what it had to say).
func exitCodeOf(err error) (int, error) {
	if err == nil {
		return exitOK, nil
	}
	var ce *exitCodeError
	if errors.As(err, &ce) {
		return ce.code, ce.err
	}
	if isCobraUsage(err) {
		return exitUsage, err
	}
	return exitError, err
}

// isCobraUsage recognises the argument errors cobra itself returns (unknown
// command, wrong argument count, missing required flag): they are usage
// errors, exit 2.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag",
		"accepts ", "requires at least", "requires at most", "received ", "required flag", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
