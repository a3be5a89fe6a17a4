package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/graphs"
)

// TestGraphgenWritesValidGraphs writes each format and plugin kind and
// loads the result with the real parser.
func TestGraphgenWritesValidGraphs(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"yaml", "json"} {
		for _, plugin := range []string{"noop", "exec"} {
			path := filepath.Join(dir, plugin+"."+format)
			var stderr bytes.Buffer
			code := run([]string{"-nodes", "500", "-edges", "1200", "-format", format, "-plugin", plugin, "-o", path}, os.Stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			g, err := graphs.Load(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(g.Nodes) != 500 || !strings.Contains(stderr.String(), "500 nodes") {
				t.Errorf("%s: %d nodes, stderr %q", path, len(g.Nodes), stderr.String())
			}
		}
	}
	if code := run([]string{"-format", "xml"}, os.Stdout, &bytes.Buffer{}); code != 2 {
		t.Errorf("bad format: exit %d", code)
	}
}
