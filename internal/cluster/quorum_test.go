package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestQuorumLostMidRun: two of the three etcd members stop while a run's
// steps go to agents. Without a quorum nothing new starts (no claim, no
// dispatch can commit); once the members are back the run goes on by
// itself and finishes, every step run once.
func TestQuorumLostMidRun(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("quorum")
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: quorum\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range 12 {
		deps := ""
		if i > 0 {
			deps = fmt.Sprintf(", depends_on: [s%d]", i-1)
		}
		if i == 3 {
			// s3 holds the run until the quorum is gone. If the agent's
			// lease expires meanwhile (a slow machine), the next agent's
			// Check finds it restored.
			fmt.Fprintf(&b, "  - {id: s3, kind: application, plugin: exec, zone: core%s, with: {restore: [sh, -c, 'echo s3 >> runs.txt; while [ ! -f go ]; do sleep 0.1; done; touch s3.done'], check: [sh, -c, 'test -f s3.done']}}\n", deps)
			continue
		}
		fmt.Fprintf(&b, "  - {id: s%d, kind: application, plugin: exec, zone: core%s, with: {restore: [sh, -c, 'echo s%d >> runs.txt']}}\n", i, deps, i)
	}
	g := mustGraph(t, dir, b.String())
	startAgent(t, c, k, "q1", "core", 2)
	co := startCoordinator(t, c, k, dir, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	done := co.startRun(ctx, g)
	runs := filepath.Join(dir, "runs.txt")
	total := func() int {
		n := 0
		for _, v := range counts(t, runs) {
			n += v
		}
		return n
	}
	waitFor(t, 60*time.Second, "s3 started", func() bool { return total() >= 4 })
	stopAt := time.Now()
	stopped := make(chan struct{})
	go func() { c.Stop(1); close(stopped) }()
	c.Stop(2)
	<-stopped
	t.Logf("two members stopped in %s; %d steps ran", time.Since(stopAt).Round(time.Millisecond), total())
	// s3 ends now, without a quorum: its result cannot be written, and
	// nothing new starts.
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if n := total(); n != 4 {
		t.Errorf("%d steps started, want 4 (s0 to s3): a step started without a quorum", n)
	}
	select {
	case o := <-done:
		t.Fatalf("the run ended without a quorum: %+v", o)
	default:
	}
	c.Restart(1)
	c.Restart(2)
	var o runOut
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatal("the run did not go on once the quorum was back")
	}
	if o.err != nil || o.st != state.RunSucceeded {
		t.Fatalf("run: %s %v; nodes %s", o.st, o.err, nodeStates(t, co.st, o.runID))
	}
	got := counts(t, runs)
	for i := range 12 {
		if got[fmt.Sprintf("s%d", i)] != 1 {
			t.Errorf("s%d ran %d times: %v", i, got[fmt.Sprintf("s%d", i)], got)
		}
	}
}
