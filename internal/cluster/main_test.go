package cluster_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/reprise-si/reprise/internal/buildtest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// buildErr is why bin/reprise could not be built (nil: it is).
var buildErr error

// TestMain lets the test binary serve the built-in plugins (exec, noop):
// in-process agents and coordinators run real plugin processes. It builds
// bin/reprise for the tests that run agents as real processes.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	flag.Parse()
	if !testing.Short() {
		if buildErr = buildtest.Build("reprise"); buildErr != nil {
			fmt.Fprintf(os.Stderr, "internal/cluster: the process tests will skip: %v\n", buildErr)
		}
	}
	os.Exit(m.Run())
}
