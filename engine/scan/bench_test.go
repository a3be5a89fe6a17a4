package scan

import (
	"context"
	"os/exec"
	"testing"

	"github.com/reprise-si/reprise/engine/scan/scantest"
)

// BenchmarkScanIOCEntropy scans a 128 MiB tree of mixed files with an ioc
// (hash list) and an entropy scanner; the sha256sum sub-benchmark hashes
// the same tree the way the speed target's reference does. `make bench`
// runs bench/scanbench for the 2 GB figure.
func BenchmarkScanIOCEntropy(b *testing.B) {
	dir := b.TempDir()
	_, size, err := scantest.MixedTree(dir, 128<<20, 1)
	if err != nil {
		b.Fatal(err)
	}
	list := mustWrite(b, b.TempDir(), "list.txt", []byte("0000000000000000000000000000000000000000000000000000000000000001\n"))
	s := mustCompile(b, Spec{Name: "ioc", Type: TypeIOC, HashLists: []string{list}, Names: []string{"*DECRYPT*"}},
		Spec{Name: "entropy", Type: TypeEntropy})
	b.Run("reprise", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := s.Scan(context.Background(), dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sha256sum", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			cmd := exec.Command("sh", "-c", `find "$1" -type f -print0 | xargs -0 -P2 sha256sum >/dev/null`, "sh", dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		}
	})
}
