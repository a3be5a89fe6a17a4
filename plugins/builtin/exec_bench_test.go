package builtin

import (
	"context"
	"testing"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// BenchmarkExecTrue is the exec plugin's own cost per command, in
// process: decode the config, the outputs file, the environment, fork and
// exec `true`, wait, read the outputs (no plugin round trip). Profile it
// with -cpuprofile to see where a node's time goes.
func BenchmarkExecTrue(b *testing.B) {
	dir := b.TempDir()
	req := execRequest("n", dir, map[string]any{"restore": []string{"true"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rec := sdk.NewRecorder()
		if err := (&Exec{}).Restore(ctx, req, rec.Stream); err != nil {
			b.Fatal(err)
		}
	}
}
