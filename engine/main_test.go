package engine_test

import (
	"os"
	"testing"

	"github.com/reprise-si/reprise/internal/hosttest"
)

// TestMain lets the test binary serve the built-in plugins, so that the
// clean-recovery tests run exec steps out of process, as in production.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	os.Exit(m.Run())
}
