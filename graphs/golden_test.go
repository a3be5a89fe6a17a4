package graphs

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const hospitalFile = "../examples/hospital/graph.yaml"

// TestGoldenHospital compares plan (text and JSON), DOT and Mermaid of the
// reference hospital graph with testdata/golden; `go test ./graphs -run
// Golden -update` rewrites them after a deliberate change.
func TestGoldenHospital(t *testing.T) {
	data, err := os.ReadFile(hospitalFile)
	if err != nil {
		t.Skipf("no hospital graph: %v", err)
	}
	// Parse under a stable name so that the golden files do not depend on
	// where the test runs.
	g, err := Parse("examples/hospital/graph.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(g, nil, 8)
	renders := map[string]func(*bytes.Buffer) error{
		"hospital.plan.txt":  func(b *bytes.Buffer) error { return p.WriteText(b) },
		"hospital.plan.json": func(b *bytes.Buffer) error { return p.WriteJSON(b) },
		"hospital.dot":       func(b *bytes.Buffer) error { return RenderDOT(b, g, RenderOptions{}) },
		"hospital.mmd":       func(b *bytes.Buffer) error { return RenderMermaid(b, g, RenderOptions{}) },
	}
	for name, render := range renders {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render(&buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./graphs -run Golden -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the golden file; if the change is deliberate run go test ./graphs -run Golden -update\ngot:\n%s", name, firstLines(buf.String(), 30))
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := bytes.SplitN([]byte(s), []byte("\n"), n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
