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
	"strings"

	"github.com/reprise-si/reprise/plugins/builtin"
)

// EnvBuiltin names the environment variable that makes a test binary serve
// a built-in plugin instead of running tests.
const EnvBuiltin = "REPRISE_TEST_BUILTIN"

// MaybeServe serves the built-in plugin named by $REPRISE_TEST_BUILTIN and
// exits, when it is set; otherwise it calls QuickRaceExit and returns. Call
// it first in TestMain.
func MaybeServe() {
	name := os.Getenv(EnvBuiltin)
	if name == "" {
		QuickRaceExit()
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
	cmd.Env = append(os.Environ(), EnvBuiltin+"="+name, "GORACE="+quickRaceExit(os.Getenv("GORACE")))
	return cmd
}

// QuickRaceExit makes the race-enabled processes this test binary starts
// from now on (itself re-run as the command line or as a plugin) exit as
// soon as they are done: it adds atexit_sleep_ms=0 to $GORACE, keeping its
// other options and any atexit_sleep_ms already set. The race detector
// otherwise sleeps a second in every process before it exits, which an
// end-to-end test pays for each command it runs and each plugin it stops.
// Races are found and reported as before, and still end the process with
// exit code 66. It changes nothing for binaries built without -race.
func QuickRaceExit() {
	os.Setenv("GORACE", quickRaceExit(os.Getenv("GORACE")))
}

func quickRaceExit(gorace string) string {
	if strings.Contains(gorace, "atexit_sleep_ms=") {
		return gorace
	}
	return strings.TrimSpace(gorace + " atexit_sleep_ms=0")
}
