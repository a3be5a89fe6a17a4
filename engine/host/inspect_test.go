package host_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// TestInspect reports on a graph's plugins as `reprise plugins` shows
// them: built-ins described by their real processes, a node's bad config
// found by Validate (or not, with NoValidate), a declared plugin whose
// binary is missing.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: inspect
plugins:
  ghost: { path: ./bin/ghost }
nodes:
  - { id: milestone, kind: infrastructure, plugin: noop }
  - { id: script, kind: application, plugin: exec, with: { restore: [] } }
  - { id: pacs, kind: application, plugin: ghost }
`)
	opts := host.InspectOptions{Timeout: 20 * time.Second, Host: host.Options{BuiltinCommand: hosttest.BuiltinCommand}}
	reports := host.Inspect(context.Background(), g, opts)
	byName := map[string]host.PluginReport{}
	var names []string
	for _, r := range reports {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "exec,ghost,noop" {
		t.Fatalf("reports for %s, want exec,ghost,noop (name order)", got)
	}
	noop := byName["noop"]
	if !noop.Builtin || noop.Checksum != "built in" || noop.Describe == nil || noop.Describe.Name != "noop" || noop.Error != "" ||
		strings.Join(noop.Nodes, ",") != "milestone" {
		t.Errorf("noop = %+v", noop)
	}
	if ex := byName["exec"]; len(ex.Problems) != 1 || !strings.Contains(ex.Problems[0], `node "script": with.restore`) {
		t.Errorf("exec problems = %q, want the script node's empty restore", ex.Problems)
	}
	ghost := byName["ghost"]
	if ghost.Builtin || ghost.Describe != nil || !strings.Contains(ghost.Error, "not found") || ghost.Checksum != "unreadable" ||
		!strings.HasSuffix(ghost.Resolved, "/bin/ghost") {
		t.Errorf("ghost = %+v, want a missing binary", ghost)
	}

	opts.NoValidate = true
	for _, r := range host.Inspect(context.Background(), g, opts) {
		if len(r.Problems) != 0 {
			t.Errorf("NoValidate: %s has problems %q", r.Name, r.Problems)
		}
	}
}
