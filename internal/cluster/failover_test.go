package cluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// failoverGraph: a chain of short steps with, in the middle, one that does
// its work and then lingers, so that the leader can be killed while it
// runs, after its work is done.
func failoverGraph(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\nnodes:\n", name)
	fmt.Fprintf(&b, "  - {id: first, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'echo first >> runs.txt']}}\n")
	fmt.Fprintf(&b, "  - id: slow\n    kind: application\n    plugin: exec\n    depends_on: [first]\n    with:\n      restore: [sh, -c, 'echo slow >> runs.txt; touch slow.done; sleep 8']\n      check: [sh, -c, 'test -f slow.done']\n")
	for i := range 4 {
		fmt.Fprintf(&b, "  - {id: after%d, kind: application, plugin: exec, depends_on: [slow], with: {restore: [sh, -c, 'echo after%d >> runs.txt']}}\n", i, i)
	}
	return b.String()
}

// TestLeaderKilledStandbyTakesOver runs two coordinators as real `reprise
// run` processes on one graph: the leader, and a standby. A third one
// without --standby is refused (exit 2), naming the leader. The leader is
// SIGKILLed while a step runs whose work is done: the standby takes the
// lead once the leader's lease expires, goes on with the leader's run, asks
// the step left running Check (restored: not run again) and finishes the
// run; every step ran exactly once.
func TestLeaderKilledStandbyTakesOver(t *testing.T) {
	c := etcdtest.Start(t, 3)
	dir := t.TempDir()
	t.Run("bbolt state", func(t *testing.T) { leaderKilled(t, c, c.URL("failover"), filepath.Join(dir, "reprise.db")) })
	// On an etcd state the coordinators may be on different machines.
	t.Run("etcd state", func(t *testing.T) { leaderKilled(t, c, c.URL("failover-etcd"), c.URL("failover-etcd")) })
}

func leaderKilled(t *testing.T, c *etcdtest.Cluster, url, db string) {
	dir := t.TempDir()
	graph := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(graph, []byte(failoverGraph("failover")), 0o644); err != nil {
		t.Fatal(err)
	}
	leader := reprise(t, "run", "-q", "--cluster", url, "--ttl", "2s", "--state", db, graph)
	waitFor(t, 60*time.Second, "the leader's run started", func() bool {
		_, err := os.Stat(filepath.Join(dir, "runs.txt"))
		return err == nil
	})
	standby := reprise(t, "run", "-q", "--cluster", url, "--ttl", "2s", "--standby", "--state", db, graph)
	waitFor(t, 60*time.Second, "the standby waits", func() bool { return strings.Contains(standby.output(), "waiting to take over") })
	if !regexp.MustCompile(`graph failover is led by coordinator \S+:` + fmt.Sprint(leader.cmd.Process.Pid)).MatchString(standby.output()) {
		t.Errorf("the standby does not name the leader (pid %d):\n%s", leader.cmd.Process.Pid, standby.output())
	}
	third := reprise(t, "run", "-q", "--cluster", url, "--ttl", "2s", "--state", db, graph)
	if code := third.wait(t, 60*time.Second); code != 2 || !strings.Contains(third.output(), fmt.Sprintf("pid %d", leader.cmd.Process.Pid)) ||
		!strings.Contains(third.output(), "--standby") {
		t.Errorf("a coordinator without --standby: exit %d, want 2 naming the leader:\n%s", code, third.output())
	}
	waitFor(t, 60*time.Second, "slow did its work", func() bool {
		_, err := os.Stat(filepath.Join(dir, "slow.done"))
		return err == nil
	})
	killed := time.Now()
	leader.cmd.Process.Signal(syscall.SIGKILL)
	leader.wait(t, 10*time.Second)
	waitFor(t, 60*time.Second, "the standby took over", func() bool { return strings.Contains(standby.output(), "took over the lead") })
	took := time.Since(killed)
	if code := standby.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("standby: exit %d:\n%s", code, standby.output())
	}
	if !strings.Contains(standby.output(), "going on with run") || !strings.Contains(standby.output(), "succeeded: 6/6 nodes done") {
		t.Errorf("standby output:\n%s", standby.output())
	}
	got := counts(t, filepath.Join(dir, "runs.txt"))
	for _, id := range []string{"first", "slow", "after0", "after1", "after2", "after3"} {
		if got[id] != 1 {
			t.Errorf("%s ran %d times, want once: %v", id, got[id], got)
		}
	}
	// A generous limit: the figure (TTL + 2 s) comes from the benchmark.
	if took > 2*time.Second+20*time.Second {
		t.Errorf("standby took over %s after the leader's SIGKILL", took)
	}
	t.Logf("standby took over %s after the leader's SIGKILL (ttl 2s)", took.Round(time.Millisecond))
}
