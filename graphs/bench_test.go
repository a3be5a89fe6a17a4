package graphs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprise-si/reprise/internal/graphgen"
)

// writeSynthetic writes a graphgen graph into dir and returns its path.
func writeSynthetic(tb testing.TB, dir string, nodes, edges int, format string) string {
	tb.Helper()
	doc := graphgen.Generate(graphgen.Options{Nodes: nodes, Edges: edges, Seed: 1})
	var buf bytes.Buffer
	var err error
	if format == "json" {
		err = doc.WriteJSON(&buf)
	} else {
		err = doc.WriteYAML(&buf)
	}
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "synthetic."+format)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// benchValidatePlan measures what `reprise plan FILE` does: Load (read,
// parse, validate), Analyze and EstimateDuration.
func benchValidatePlan(b *testing.B, nodes, edges int, format string) {
	path := writeSynthetic(b, b.TempDir(), nodes, edges, format)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		a := Analyze(g)
		if EstimateDuration(g, a, 8) <= 0 {
			b.Fatal("no estimate")
		}
	}
}

// BenchmarkValidatePlan10kYAML: target under 0.5 s (graphs/BENCH.md).
func BenchmarkValidatePlan10kYAML(b *testing.B) { benchValidatePlan(b, 10_000, 20_000, "yaml") }

// BenchmarkValidatePlan100kJSON: target under 2 s (graphs/BENCH.md).
func BenchmarkValidatePlan100kJSON(b *testing.B) { benchValidatePlan(b, 100_000, 200_000, "json") }

// BenchmarkValidatePlan150kJSON: the largest graph the size limit is sized for.
func BenchmarkValidatePlan150kJSON(b *testing.B) { benchValidatePlan(b, 150_000, 300_000, "json") }

// BenchmarkValidatePlan100kYAML: target under 3 s and 800 MB (issue 16,
// graphs/BENCH.md).
func BenchmarkValidatePlan100kYAML(b *testing.B) { benchValidatePlan(b, 100_000, 200_000, "yaml") }
