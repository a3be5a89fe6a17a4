package main

import (
	"os"
	"runtime/pprof"
	"strconv"

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
			// For benchmarks: a CPU profile of the plugin process, written
			// when the host ends it (PATH.NAME.PID, one file a process).
			if path := os.Getenv("REPRISE_PLUGIN_CPUPROFILE"); path != "" {
				if f, err := os.Create(path + "." + args[0] + "." + strconv.Itoa(os.Getpid())); err == nil {
					if pprof.StartCPUProfile(f) == nil {
						defer func() { pprof.StopCPUProfile(); f.Close() }()
					}
				}
			}
			if err := builtin.Serve(args[0]); err != nil {
				return usageError("%v", err)
			}
			return nil
		},
	}
}
