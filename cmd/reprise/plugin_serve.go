package main

import (
	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/plugins/builtin"
)

// newPluginServeCmd is the hidden command the plugin host runs to serve a
// built-in plugin (exec, http, manual, noop) out of process.
func newPluginServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "plugin-serve NAME",
		Short:  "Serve a built-in plugin to a reprise process (internal)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := builtin.Serve(args[0]); err != nil {
				return usageError("%v", err)
			}
			return nil
		},
	}
}
