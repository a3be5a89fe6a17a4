// Package builtin holds the plugins served by the reprise binary itself
// (exec, http, manual, noop). They are ordinary sdk plugins: reprise
// re-executes itself as `reprise plugin-serve NAME`, so built-ins take the
// same out-of-process path as vendor plugins.
package builtin

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Version is the version the built-in plugins report in Describe.
const Version = "1.0.0"

// Names are the built-in plugins, sorted. graphs.BuiltinPlugins lists the
// same names for graph validation (a test keeps them equal).
var Names = []string{"exec", "http", "manual", "noop"}

// Plugin returns the built-in plugin called name.
func Plugin(name string) (sdk.Plugin, error) {
	switch name {
	case "exec":
		return &Exec{}, nil
	case "http":
		return &HTTP{}, nil
	case "manual":
		return &Manual{}, nil
	case "noop":
		return &Noop{}, nil
	}
	return nil, fmt.Errorf("unknown built-in plugin %q (want %s)", name, strings.Join(Names, ", "))
}

// Serve serves built-in plugin name through go-plugin in the current
// process, until the host ends it. It fails at once for an unknown name.
func Serve(name string) error {
	p, err := Plugin(name)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// A plugin process keeps little alive and allocates per call:
		// collect less often (GOGC in the environment still decides).
		debug.SetGCPercent(400)
	}
	sdk.Serve(p)
	outputs.close()
	return nil
}
