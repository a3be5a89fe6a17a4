package cluster_test

import (
	"os"
	"testing"

	"github.com/reprise-si/reprise/internal/hosttest"
)

// TestMain lets the test binary serve the built-in plugins (exec, noop):
// agents and coordinators run real plugin processes.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	os.Exit(m.Run())
}
