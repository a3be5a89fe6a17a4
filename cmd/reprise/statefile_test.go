package main

import (
	"os"
	"strings"
	"testing"
)

// TestCLIEmptyStateFile: a zero-length state file (a creation cut short)
// holds no run, and every command says so the same way: readers report no
// run, never damage; a run rebuilds the file and goes on.
func TestCLIEmptyStateFile(t *testing.T) {
	d := newCLIDir(t)
	if err := os.WriteFile(d.path("reprise.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"runs"}, {"log"}, {"log", "--verify"}, {"report"}} {
		_, stderr, code := d.run(args...)
		if code != exitError || !strings.Contains(stderr, "holds no run yet") || strings.Contains(stderr, "damaged") {
			t.Errorf("reprise %s on an empty state file: exit %d, stderr %q; want exit 1 saying it holds no run yet", strings.Join(args, " "), code, stderr)
		}
	}
	if _, stderr, code := d.run("resume"); code != exitError || !strings.Contains(stderr, "no unfinished run") {
		t.Errorf("reprise resume on an empty state file: exit %d, stderr %q; want no unfinished run", code, stderr)
	}
	g := d.write("graph.yaml", "version: 1\nname: g\nnodes:\n  - {id: a, kind: application, plugin: noop}\n")
	d.mustRun(0, "run", g)
	if s := d.status(); s.Status != "succeeded" {
		t.Errorf("status after a run on a rebuilt file: %+v", s)
	}
}
