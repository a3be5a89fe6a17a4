package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestApproveThroughEtcd: a run waiting on a manual gate (run --wait) in a
// coordinator that serves the operators' commands; an operator on another
// machine (another client) approves through etcd: the coordinator applies
// it through its engine, the run goes on, the journal names the operator.
// With no coordinator live, the command is withdrawn: ErrNoLeader.
func TestApproveThroughEtcd(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("cmds")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: gate
nodes:
  - {id: gate, kind: infrastructure, plugin: manual}
  - {id: after, kind: application, plugin: exec, depends_on: [gate], with: {restore: [sh, -c, 'echo after >> runs.txt']}}
`)
	co := startCoordinator(t, c, k, dir, g, false, func(o *engine.Options) { o.Wait = true })
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	operator := c.Client(t)
	if _, err := cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdApprove, Run: "no-such-run", Node: "gate", By: "A. Martin"}, time.Second); !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("a command nobody serves: %v, want ErrNoLeader", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go cluster.ServeCommands(sctx, c.Client(t), k, "coordinator-1", co.eng.LiveRun, func(ctx context.Context, cmd cluster.Command) error {
		return co.eng.Approve(ctx, cmd.Run, cmd.Node, cmd.By, cmd.Comment)
	}, nil)
	type out struct {
		run string
		st  state.RunStatus
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := co.eng.Start(ctx, g)
		done <- out{res.RunID, res.Status, err}
	}()
	var run string
	waitFor(t, 60*time.Second, "the gate waits", func() bool {
		run = co.eng.LiveRun()
		if run == "" {
			return false
		}
		recs, err := co.st.Nodes(run)
		for _, r := range recs {
			if err == nil && r.ID == "gate" && r.State == state.NodeWaiting {
				return true
			}
		}
		return false
	})
	if _, err := cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdApprove, Run: run, Node: "after", By: "A. Martin"}, 10*time.Second); err == nil || !strings.Contains(err.Error(), "coordinator-1") {
		t.Errorf("approving a node that is not a gate: %v, want the coordinator's refusal", err)
	}
	got, err := cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdApprove, Run: run, Node: "gate", By: "A. Martin", Comment: "network checked"}, 10*time.Second)
	if err != nil || got.PickedBy != "coordinator-1" {
		t.Fatalf("approve through etcd: %+v, %v", got, err)
	}
	o := <-done
	if o.err != nil || o.st != state.RunSucceeded {
		t.Fatalf("run: %+v", o)
	}
	ap := journalOf(t, co.st, o.run, state.EntryApproved)
	if len(ap) != 1 || ap[0].By != "A. Martin" || ap[0].NodeID != "gate" {
		t.Errorf("approved entries %+v", ap)
	}
}
