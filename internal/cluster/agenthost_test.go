package cluster_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// pidsOf reads the plugin processes' ids the steps wrote (their $PPID).
func pidsOf(t *testing.T, path string) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for l, n := range counts(t, path) {
		pid, err := strconv.Atoi(l)
		if err != nil || n == 0 {
			t.Fatalf("%s: line %q", path, l)
		}
		out[pid] = true
	}
	return out
}

// alive reports whether process pid exists (a zombie counts: the host
// reaps its plugins).
func alive(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// TestAgentClosesIdleHost: once the steps of a graph end and its plugin
// host sat idle (a short HostIdle here), the agent closes it: the plugin
// process that ran them is gone, and the parsed graph is let go. A later
// run of the same graph (same hash, not published again) fetches it again,
// gets a fresh host and its steps run, in a new plugin process.
func TestAgentClosesIdleHost(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("idle")
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("version: 1\nname: idle\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for _, id := range []string{"a", "b", "c"} {
		src.WriteString("  - {id: " + id + ", kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo $PPID >> pids.txt']}}\n")
	}
	g := mustGraph(t, dir, src.String())
	startAgentWith(t, c, cluster.AgentOptions{Keys: k, Name: "core-1", Zone: "core", Slots: 2, HostIdle: 1500 * time.Millisecond})
	co := startCoordinator(t, c, k, dir, g, true)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	pids := filepath.Join(dir, "pids.txt")

	co.waitSucceeded(t, ctx, co.startRun(ctx, g))
	first := pidsOf(t, pids)
	if len(first) == 0 {
		t.Fatal("no plugin process id written")
	}
	waitFor(t, 30*time.Second, "the idle host's plugin processes end", func() bool {
		for pid := range first {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "the idle graph let go", func() bool { return !cluster.GraphParsed(g.Hash(), g.File) })

	co.waitSucceeded(t, ctx, co.startRun(ctx, g))
	second := pidsOf(t, pids)
	fresh := 0
	for pid := range second {
		if !first[pid] {
			fresh++
		}
	}
	if fresh == 0 {
		t.Errorf("the second run's steps ran in the closed host's processes %v (all: %v)", first, second)
	}
}
