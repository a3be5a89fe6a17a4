// Package hosttest lets tests run the built-in plugins out of process by
// re-running the test binary as the plugin (go-plugin's helper-process
// trick). In the test package:
//
//	func TestMain(m *testing.M) {
//		hosttest.MaybeServe()
//		os.Exit(m.Run())
//	}
//
// and host.Options{BuiltinCommand: hosttest.BuiltinCommand}.
package hosttest

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/reprise-si/reprise/plugins/builtin"
)

// EnvBuiltin names the environment variable that makes a test binary serve
// a built-in plugin instead of running tests.
const EnvBuiltin = "REPRISE_TEST_BUILTIN"

// MaybeServe serves the built-in plugin named by $REPRISE_TEST_BUILTIN and
// exits, when it is set; otherwise it returns at once. Call it first in
// TestMain.
func MaybeServe() {
	name := os.Getenv(EnvBuiltin)
	if name == "" {
		return
	}
	if err := builtin.Serve(name); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// BuiltinCommand re-runs the test binary as built-in plugin name. If the
// test package forgot MaybeServe, the binary runs no test (-test.run=^$)
// and exits, which the host reports as a failed handshake.
func BuiltinCommand(name string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvBuiltin+"="+name)
	return cmd
}
