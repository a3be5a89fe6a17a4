package cluster_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestResultAnswerLostNotRefused: an agent's result write that committed
// but whose answer was lost is sent again; its offer batch went with the
// first write, so fencing refuses the second and the agent writes the
// result aside as refused. The coordinator applied the first: it does not
// journal a "late result refused" (what an operator reads as an agent
// that was cut off), and each step ran once.
func TestResultAnswerLostNotRefused(t *testing.T) {
	c := etcdtest.Start(t, 1)
	k := cluster.NewKeys("rlost")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: rlost
zones:
  - {id: core, title: Core}
nodes:
  - {id: s0, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo s0 >> runs.txt']}}
  - {id: s1, kind: application, plugin: exec, zone: core, depends_on: [s0], with: {restore: [sh, -c, 'echo s1 >> runs.txt']}}
  - {id: s2, kind: application, plugin: exec, zone: core, depends_on: [s1], with: {restore: [sh, -c, 'echo s2 >> runs.txt']}}
`)
	a := startAgent(t, c, k, "a1", "core", 4)
	var writes atomic.Int32
	a.LoseResultAnswers(func() bool { return writes.Add(1) == 2 }) // s1's result: committed, its answer lost
	co := startCoordinator(t, c, k, dir, g, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := co.waitSucceeded(t, ctx, co.startRun(ctx, g))
	ranOnce(t, filepath.Join(dir, "runs.txt"), "s", 3)
	if writes.Load() < 3 {
		t.Fatalf("%d result writes, want the lost one sent again", writes.Load())
	}
	// The refused copy reaches the coordinator within its watch's delay.
	time.Sleep(2 * time.Second)
	if ref := journalOf(t, co.st, o.runID, cluster.EntryResultRefused); len(ref) != 0 {
		t.Errorf("journaled as refused: %+v, want none (the result was applied once)", ref)
	}
	if left, err := c.Client(t).Get(ctx, k.Runs(), clientv3WithPrefix()...); err == nil {
		for _, kv := range left.Kvs {
			if p := string(kv.Key); filepath.Base(filepath.Dir(p)) == "refused" {
				t.Errorf("refused copy left in etcd: %s", p)
			}
		}
	}
}
