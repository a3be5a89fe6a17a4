package engine_test

import (
	"os"
	"testing"

	"github.com/reprise-si/reprise/internal/hosttest"
	"github.com/reprise-si/reprise/plugins/sdk"
)

// TestMain lets the test binary serve the built-in plugins, so that the
// clean-recovery tests run exec steps out of process, as in production, and
// serve the vault plugin of pluginpoints_test.go.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	if os.Getenv(envVault) != "" {
		sdk.Serve(vaultPlugin{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}
