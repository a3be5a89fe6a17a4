package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
	go cluster.ServeCommands(sctx, cluster.ServeOptions{Client: c.Client(t), Keys: k, Name: "coordinator-1", Live: co.eng.LiveRun,
		Apply: func(ctx context.Context, cmd *cluster.Command) error {
			return co.eng.Approve(ctx, cmd.Run, cmd.Node, cmd.By, cmd.Comment)
		}})
	done := co.startRun(ctx, g)
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
	ap := journalOf(t, co.st, o.runID, state.EntryApproved)
	if len(ap) != 1 || ap[0].By != "A. Martin" || ap[0].NodeID != "gate" {
		t.Errorf("approved entries %+v", ap)
	}
}

// serve runs ServeCommands for run "r1" as coordinator name on its own
// client, counting what it applies; stop ends it.
type served struct {
	cli     *clientv3.Client
	mu      sync.Mutex
	applied []cluster.Command
	tokens  []string
	stop    context.CancelFunc
}

func serveAs(t *testing.T, c *etcdtest.Cluster, k cluster.Keys, name string, apply func(*cluster.Command) error,
	authorize func(cluster.Command, string) (string, error)) *served {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cli: cli, stop: cancel}
	o := cluster.ServeOptions{Client: cli, Keys: k, Name: name, TTL: time.Second, Live: func() string { return "r1" },
		Apply: func(_ context.Context, cmd *cluster.Command) error {
			s.mu.Lock()
			s.applied = append(s.applied, *cmd)
			s.mu.Unlock()
			if apply != nil {
				return apply(cmd)
			}
			return nil
		}}
	if authorize != nil {
		o.Authorize = func(_ context.Context, cmd cluster.Command, token string) (string, error) {
			s.mu.Lock()
			s.tokens = append(s.tokens, token)
			s.mu.Unlock()
			return authorize(cmd, token)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); cluster.ServeCommands(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cli.Close()
	})
	// Serving once its key is published (the first thing it does).
	waitFor(t, 30*time.Second, name+" serves", func() bool {
		r, err := cli.Get(context.Background(), k.CommandKeys()+name)
		return err == nil && len(r.Kvs) == 1
	})
	return s
}

func (s *served) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.applied) }

// TestCommandOfDeadCoordinatorNotAppliedTwice (and sealedToken, on the same
// cluster): coordinator A takes a retry
// and dies before acting (its etcd client closed, as a SIGKILL leaves it:
// no answer, its lease left to expire). The command goes with A's lease:
// the standby B, serving before and after it expires, never applies it,
// and the sender is told (ErrCoordinatorLost) — at most once. A command
// that nobody had taken yet when the leader died is applied once by B.
func TestCommandOfDeadCoordinatorNotAppliedTwice(t *testing.T) {
	c := etcdtest.Start(t, 3)
	t.Run("dead coordinator", func(t *testing.T) { deadCoordinator(t, c) })
	t.Run("sealed token", func(t *testing.T) { sealedToken(t, c) })
}

func deadCoordinator(t *testing.T, c *etcdtest.Cluster) {
	k := cluster.NewKeys("dead")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	taken := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	a := serveAs(t, c, k, "coordinator-a", func(*cluster.Command) error {
		close(taken)
		<-release // "dies" here: it never writes again
		return nil
	}, nil)
	operator := c.Client(t)
	type sent struct {
		got cluster.Command
		err error
	}
	res := make(chan sent, 1)
	go func() {
		got, err := cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdRetry, Run: "r1", Node: "db", By: "A. Martin"}, 10*time.Second)
		res <- sent{got, err}
	}()
	select {
	case <-taken:
	case <-ctx.Done():
		t.Fatal("coordinator A never took the command")
	}
	a.cli.Close() // A dies before acting: its lease is no longer kept alive
	b := serveAs(t, c, k, "coordinator-b", func(cmd *cluster.Command) error {
		cmd.Reset = []string{cmd.Node}
		return nil
	}, nil)
	var r sent
	select {
	case r = <-res:
	case <-time.After(60 * time.Second):
		t.Fatal("the sender never heard that coordinator A died")
	}
	if !errors.Is(r.err, cluster.ErrCoordinatorLost) || !strings.Contains(r.err.Error(), "coordinator-a") || !strings.Contains(r.err.Error(), "reprise log r1") {
		t.Fatalf("send to a coordinator that died: %v, want ErrCoordinatorLost naming it and the journal", r.err)
	}
	time.Sleep(2 * time.Second) // B had every chance to see it
	if n := b.count(); n != 0 {
		t.Fatalf("the standby applied the dead coordinator's command: %+v", b.applied)
	}
	if left, err := operator.Get(ctx, k.Commands(), clientv3.WithPrefix()); err != nil || len(left.Kvs) != 0 {
		t.Errorf("commands left: %v %v", left, err)
	}
	// B serves: a retry sent now is applied by it, once.
	got, err := cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdRetry, Run: "r1", Node: "app", Downstream: true, By: "A. Martin"}, 10*time.Second)
	if err != nil || got.PickedBy != "coordinator-b" || len(got.Reset) != 1 || got.Reset[0] != "app" {
		t.Fatalf("retry through B: %+v, %v", got, err)
	}
	if n := b.count(); n != 1 || !b.applied[0].Downstream || b.applied[0].By != "A. Martin" {
		t.Fatalf("B applied %+v", b.applied)
	}
	// A command sent while no coordinator serves waits for its pickup
	// window; the standby that starts serving within it applies it once.
	b.stop()
	waitFor(t, 30*time.Second, "B's key withdrawn", func() bool {
		r, err := operator.Get(ctx, k.CommandKeys()+"coordinator-b")
		return err == nil && len(r.Kvs) == 0
	})
	go func() {
		got, err := cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdRetry, Run: "r1", Node: "web", By: "A. Martin"}, 30*time.Second)
		res <- sent{got, err}
	}()
	time.Sleep(time.Second)
	cc := serveAs(t, c, k, "coordinator-c", nil, nil)
	r = <-res
	if r.err != nil || r.got.PickedBy != "coordinator-c" || cc.count() != 1 {
		t.Fatalf("a command waiting for a coordinator: %+v, %v, applied %d", r.got, r.err, cc.count())
	}
}

// sealedToken: the operator's token reaches the coordinator's Authorize, yet etcd never holds it in clear (every revision written
// during the test is read back); a seal copied onto another command does
// not open; a refusal comes back to the sender with its reason; a command
// whose sender is gone before any coordinator takes it goes with its lease.
func sealedToken(t *testing.T, c *etcdtest.Cluster) {
	k := cluster.NewKeys("sealed")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const token = "rpr_0123456789abcdef_s3cr3t-that-must-not-leak"
	co := serveAs(t, c, k, "coordinator-1", nil, func(cmd cluster.Command, tok string) (string, error) {
		if tok != token {
			return "", fmt.Errorf("token refused")
		}
		if cmd.Op == cluster.CmdApprove {
			return "", fmt.Errorf("operator ann (role operator) may not approve")
		}
		return "ann", nil
	})
	operator := c.Client(t)
	start, err := operator.Get(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := cluster.SendWith(ctx, operator, k, cluster.Command{Op: cluster.CmdRetry, Run: "r1", Node: "db"}, cluster.SendOptions{Token: token})
	if err != nil || got.By != "ann" {
		t.Fatalf("retry with a token: %+v, %v", got, err)
	}
	if co.count() != 1 || co.applied[0].By != "ann" || co.tokens[0] != token {
		t.Fatalf("applied %+v with tokens %d", co.applied, len(co.tokens))
	}
	_, err = cluster.SendWith(ctx, operator, k, cluster.Command{Op: cluster.CmdApprove, Run: "r1", Node: "gate"}, cluster.SendOptions{Token: token})
	if err == nil || !strings.Contains(err.Error(), "refused: operator ann (role operator) may not approve") {
		t.Fatalf("approve by a role that may not: %v", err)
	}
	_, err = cluster.Send(ctx, operator, k, cluster.Command{Op: cluster.CmdRetry, Run: "r1", Node: "db", By: "x"}, 0)
	if err == nil || !strings.Contains(err.Error(), "token refused") {
		t.Fatalf("a command without a token: %v", err)
	}
	// Read every revision written since the start: the token never.
	end, err := operator.Get(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	var sealedVal string
	wctx, wcancel := context.WithCancel(ctx)
	for wr := range operator.Watch(wctx, "/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1)) {
		for _, ev := range wr.Events {
			if strings.Contains(string(ev.Kv.Value), "s3cr3t") {
				t.Errorf("the token in clear in etcd at %s", ev.Kv.Key)
			}
			if strings.Contains(string(ev.Kv.Value), `"seals"`) && sealedVal == "" {
				sealedVal = string(ev.Kv.Value)
			}
		}
		if wr.Header.Revision >= end.Header.Revision {
			wcancel()
		}
	}
	wcancel()
	if sealedVal == "" {
		t.Fatal("no sealed command seen")
	}
	// The seal of that retry, copied onto a command at another key.
	var copied cluster.Command
	if err := json.Unmarshal([]byte(sealedVal), &copied); err != nil {
		t.Fatal(err)
	}
	copied.Node, copied.Lease = "other", 0
	key := k.Commands() + "r1/copied"
	val, _ := json.Marshal(copied)
	put, err := operator.Put(ctx, key, string(val))
	if err != nil {
		t.Fatal(err)
	}
	var answer cluster.Command
	waitFor(t, 30*time.Second, "the copied seal answered", func() bool {
		r, err := operator.Get(ctx, key)
		return err == nil && len(r.Kvs) == 1 && json.Unmarshal(r.Kvs[0].Value, &answer) == nil && answer.Done
	})
	if !strings.Contains(answer.Error, "made for another command") || co.count() != 1 {
		t.Fatalf("a copied seal: %+v (applied %d)", answer, co.count())
	}
	_ = put
	// A sender gone before any coordinator takes its command: the command
	// goes with its lease (nothing stale is applied later).
	co.stop()
	gone, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	go cluster.Send(sctx, gone, k, cluster.Command{Op: cluster.CmdRetry, Run: "r1", Node: "late", By: "x"}, time.Minute)
	waitFor(t, 30*time.Second, "the command written", func() bool {
		r, err := operator.Get(ctx, k.Commands()+"r1/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && r.Count >= 2 // the copied one and this one
	})
	scancel()
	gone.Close()
	waitFor(t, 30*time.Second, "the dead sender's command gone", func() bool {
		r, err := operator.Get(ctx, k.Commands()+"r1/", clientv3.WithPrefix())
		if err != nil {
			return false
		}
		for _, kv := range r.Kvs {
			if strings.Contains(string(kv.Value), `"late"`) {
				return false
			}
		}
		return true
	})
}
