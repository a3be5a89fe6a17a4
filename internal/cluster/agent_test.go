package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// zoneGraph is a graph of n exec nodes in zone core, each appending its id
// to runs.txt (one line per invocation), the last ones after the first.
func zoneGraph(n int, extra string) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: agents\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range n {
		deps := ""
		if i > 0 && i%3 == 0 {
			deps = fmt.Sprintf(", depends_on: [n%d]", i-1)
		}
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: exec, zone: core%s, with: {restore: [sh, -c, 'echo n%d >> runs.txt; echo step n%d says hello']}}\n", i, deps, i, i)
	}
	b.WriteString(extra)
	return b.String()
}

// TestAgentsRunZoneSteps: the steps of a zone with agents run on them,
// each once, at most Slots at a time per agent; events stream back; an
// agent of a zone with no nodes idles; a second agent with a name in use is
// refused, naming the live one.
func TestAgentsRunZoneSteps(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("t1")
	dir := t.TempDir()
	g := mustGraph(t, dir, zoneGraph(9, ""))
	a1 := startAgent(t, c, k, "core-1", "core", 2)
	a2 := startAgent(t, c, k, "core-2", "core", 2)
	idle := startAgent(t, c, k, "admin-1", "admin", 2)

	// Same name: refused, naming the live agent.
	dup := cluster.NewAgent(cluster.AgentOptions{Client: c.Client(t), Keys: k, Name: "core-1", Zone: "core", NewHost: localHost})
	err := dup.Register(context.Background())
	var taken *cluster.NameTakenError
	if !errors.As(err, &taken) || !errors.Is(err, cluster.ErrNameTaken) || !strings.Contains(err.Error(), `agent "core-1" is already registered (zone "core"`) {
		t.Fatalf("second agent core-1: %v, want a NameTakenError naming the live one", err)
	}

	var evs events
	co := startCoordinator(t, c, k, dir, g, false, func(o *engine.Options) { o.OnEvent = evs.add })
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := co.eng.Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v; nodes %s", res, err, nodeStates(t, co.st, res.RunID))
	}
	ranOnce(t, filepath.Join(dir, "runs.txt"), "n", 9)
	if a1.Claimed()+a2.Claimed() != 9 || a1.Claimed() == 0 && a2.Claimed() == 0 {
		t.Errorf("claims: core-1 %d, core-2 %d; want 9 in all", a1.Claimed(), a2.Claimed())
	}
	if idle.Claimed() != 0 {
		t.Errorf("the admin agent claimed %d steps of zone core", idle.Claimed())
	}
	evs.mu.Lock()
	var said bool
	for _, ev := range evs.evs {
		if ev.Type == engine.EventNodeLog && ev.NodeID == "n4" && strings.Contains(ev.Message, "step n4 says hello") {
			said = true
		}
	}
	evs.mu.Unlock()
	if !said {
		for _, ev := range evs.evs {
			t.Logf("%s %s %q", ev.Type, ev.NodeID, ev.Message)
		}
		t.Errorf("n4's log line did not stream back from its agent")
	}
	// The work is consumed: nothing is left under the run.
	co.d.Close()
	left, err := c.Client(t).Get(ctx, k.Run(res.RunID), clientv3WithPrefix()...)
	if err != nil || left.Count != 0 {
		t.Errorf("work left in etcd after the run: %v, %v", left, err)
	}
}
