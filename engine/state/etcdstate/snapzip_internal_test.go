package etcdstate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/graphs"
)

// TestSnapMaxSize: a snapshot may be as big as the biggest graph file.
func TestSnapMaxSize(t *testing.T) {
	if snapMaxSize != graphs.MaxFileSize {
		t.Fatalf("snapMaxSize %d, graphs.MaxFileSize %d", snapMaxSize, graphs.MaxFileSize)
	}
}

// BenchmarkSnapCodec times packSnap and inflateSnap on the 815 KB YAML of
// a 10,000-node graph (BenchmarkCreateRun10k's): what a creation and a
// read of the snapshot pay for its compression.
func BenchmarkSnapCodec(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, "  - {id: n%d, kind: application, plugin: noop, zone: core, depends_on: [n%d]}\n", i, i+100)
	}
	snap := []byte(sb.String())
	packed := packSnap(snap)
	b.Run("pack", func(b *testing.B) {
		b.SetBytes(int64(len(snap)))
		for i := 0; i < b.N; i++ {
			packSnap(snap)
		}
	})
	b.Run("inflate", func(b *testing.B) {
		b.SetBytes(int64(len(snap)))
		for i := 0; i < b.N; i++ {
			if _, err := inflateSnap(packed); err != nil {
				b.Fatal(err)
			}
		}
	})
}
