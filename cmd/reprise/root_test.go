package main

import (
	"strings"
	"testing"
)

// TestUsageErrorsByType: usage errors exit 2 because of what they are, not
// because of their text: an error that merely reads like cobra's (a file
// named "requires at least 2 arg(s)") exits 1.
func TestUsageErrorsByType(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown command", []string{"stauts"}, exitUsage, `unknown command "stauts" for "reprise" (did you mean "status"?)`},
		{"unknown flag", []string{"validate", "--frob", smallGraph}, exitUsage, "unknown flag: --frob"},
		{"bad flag value", []string{"plan", smallGraph, "--parallelism", "many"}, exitUsage, `invalid argument "many"`},
		{"too many arguments", []string{"validate", smallGraph, smallGraph}, exitUsage, "accepts 1 arg(s), received 2"},
		{"missing argument", []string{"plan"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"error reading like cobra's", []string{"validate", "requires at least 2 arg(s).yaml"}, exitError, "requires at least 2 arg(s).yaml"},
		{"no command", nil, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runGraphsCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("reprise %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

// TestSubcommandsListed: the one list of subcommands has no duplicate and
// is what the root command holds.
func TestSubcommandsListed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range subcommands() {
		if seen[c.Name()] {
			t.Errorf("subcommand %q listed twice", c.Name())
		}
		seen[c.Name()] = true
	}
	root := newRootCmd()
	for _, c := range root.Commands() {
		if !seen[c.Name()] && c.Name() != "help" && c.Name() != "completion" {
			t.Errorf("root holds %q, which subcommands() does not list", c.Name())
		}
	}
	for _, want := range []string{"validate", "plan", "run", "resume", "status", "report", "plugin-serve"} {
		if !seen[want] {
			t.Errorf("subcommands() lacks %q", want)
		}
	}
}
