package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestLostAgentFencedAndChecked: an agent loses its lease while its step
// runs (its lease revoked, as when etcd cannot hear it past its TTL). The
// coordinator journals "left running by lost agent", gives the step to the
// other agent of the zone, which asks Check first: the step had done its
// work, so it is not restored again. The lost agent's late result is
// refused (fencing) and journaled, never applied.
func TestLostAgentFencedAndChecked(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("lost")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: lost
zones:
  - {id: core, title: Core}
nodes:
  - id: half
    kind: application
    plugin: exec
    zone: core
    with:
      restore: [sh, -c, 'echo half >> runs.txt; touch half.done; sleep 60']
      check: [sh, -c, 'test -f half.done']
  - {id: after, kind: application, plugin: exec, zone: core, depends_on: [half], with: {restore: [sh, -c, 'echo after >> runs.txt']}}
`)
	first := startAgent(t, c, k, "first", "core", 1)
	co := startCoordinator(t, c, k, dir, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	done := co.startRun(ctx, g)
	waitFor(t, 60*time.Second, "the first agent ran half", func() bool {
		_, err := os.Stat(filepath.Join(dir, "half.done"))
		return err == nil
	})
	// The second agent joins now, so that the first one is the one that took half.
	second := startAgent(t, c, k, "second", "core", 1)
	if _, err := first.cli.Revoke(ctx, first.Lease()); err != nil {
		t.Fatal(err)
	}
	o := co.waitSucceeded(t, ctx, done)
	if got := counts(t, filepath.Join(dir, "runs.txt")); got["half"] != 1 || got["after"] != 1 {
		t.Errorf("invocations %v, want half and after once each (half's Check said restored)", got)
	}
	if second.Claimed() < 1 {
		t.Errorf("the second agent claimed nothing")
	}
	lost := journalOf(t, co.st, o.runID, cluster.EntryAgentLost)
	if len(lost) != 1 || lost[0].NodeID != "half" || !strings.Contains(lost[0].Message, "left running by lost agent first") {
		t.Errorf("agent-lost entries %+v, want one for half naming agent first", lost)
	}
	waitFor(t, 30*time.Second, "the late result journaled", func() bool {
		return len(journalOf(t, co.st, o.runID, cluster.EntryResultRefused)) > 0
	})
	ref := journalOf(t, co.st, o.runID, cluster.EntryResultRefused)
	if ref[0].NodeID != "half" || !strings.Contains(ref[0].Message, "late result of agent first refused") {
		t.Errorf("result-refused %+v", ref[0])
	}
	succ := journalOf(t, co.st, o.runID, state.EntrySucceeded)
	var checked bool
	for _, e := range succ {
		if e.NodeID == "half" && strings.Contains(e.Message, "check on agent second") {
			checked = true
		}
	}
	if !checked {
		t.Errorf("half's success does not say the second agent's Check found it restored: %+v", succ)
	}
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
