package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// Bounds on how long a run stalls when an etcd member hangs (SIGSTOP) in
// the middle of it: the longest time between two steps' starts, less the
// usual time between them (the median, 61-66 ms). Measured on the 2-core
// test machine (election timeout 500 ms): the leader paused, 1.44-1.50 s
// (2.55-2.59 s before idle connections were probed, 5.3 s before requests
// on a member that hangs were given up: the state's attempt timeout); a
// follower paused, 5-317 ms. Generous for a loaded machine.
const (
	hungLeaderStall   = 4 * time.Second
	hungFollowerStall = time.Second
)

// hungChain is a chain of n exec steps in zone core, each appending its id
// to runs.txt and its id and start time (Unix ns) to starts.txt, then
// sleeping 50 ms.
func hungChain(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: hung\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range n {
		deps := ""
		if i > 0 {
			deps = fmt.Sprintf(", depends_on: [s%d]", i-1)
		}
		fmt.Fprintf(&b, "  - {id: s%d, kind: application, plugin: exec, zone: core%s, with: {restore: [sh, -c, 'echo s%d $(date +%%s%%N) >> starts.txt; echo s%d >> runs.txt; sleep 0.05']}}\n", i, deps, i, i)
	}
	return b.String()
}

// dialed returns a client of c dialled as the commands dial theirs
// (etcdconn.Dial: requests to the leader, following it), closed when the
// test ends.
func dialed(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	u, err := etcdconn.Parse(c.URL("x"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := etcdconn.Dial(context.Background(), u, etcdconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// starts reads starts.txt: each step's start times, in order.
func starts(t *testing.T, dir string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "starts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		ns, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("starts.txt: %q: %v", l, err)
		}
		out = append(out, time.Unix(0, ns))
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// stall returns the longest time between two steps' starts less the
// median, when the longest began relative to at, and the median.
func stall(ts []time.Time, at time.Time) (time.Duration, time.Duration, time.Duration) {
	var gaps []time.Duration
	longest, from := time.Duration(0), time.Time{}
	for i := 1; i < len(ts); i++ {
		g := ts[i].Sub(ts[i-1])
		gaps = append(gaps, g)
		if g > longest {
			longest, from = g, ts[i-1]
		}
	}
	slices.Sort(gaps)
	med := gaps[len(gaps)/2]
	return longest - med, from.Sub(at), med
}

// TestEtcdMemberHungMidRun: an etcd member hangs (SIGSTOP: its
// connections stay open, it answers nothing) while a run goes on, its
// state on the cluster and its steps through an agent, every client
// dialled as the commands dial theirs. The leader hung: the two others
// elect one, the run goes on by itself within hungLeaderStall and
// succeeds, each step run once, no agent lost, the journal verified; the
// member, resumed, catches up (the run verified again, read through it
// alone). A follower hung: the run does not stall beyond
// hungFollowerStall.
func TestEtcdMemberHungMidRun(t *testing.T) {
	c := etcdtest.Start(t, 3)
	t.Run("leader", func(t *testing.T) {
		leader := c.Leader(10 * time.Second)
		runWithHungMember(t, c, "hungl", leader, hungLeaderStall)
	})
	t.Run("follower", func(t *testing.T) {
		follower := (c.Leader(10*time.Second) + 1) % 3
		runWithHungMember(t, c, "hungf", follower, hungFollowerStall)
	})
}

// runWithHungMember runs a chain of steps through an agent, pauses member
// m once a few steps ran, resumes it once the run ended, and checks what
// TestEtcdMemberHungMidRun says.
func runWithHungMember(t *testing.T, c *etcdtest.Cluster, prefix string, m int, limit time.Duration) {
	const n = 40
	dir := t.TempDir()
	g := mustGraph(t, dir, hungChain(n))
	u, err := etcdconn.Parse(c.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	k := cluster.NewKeys(u.Root())
	startAgentWith(t, c, cluster.AgentOptions{Client: dialed(t, c), Keys: k, Name: "a1", Zone: "core", Slots: 2, TTL: cluster.DefaultTTL})
	st := etcdstate.New(dialed(t, c), u, etcdstate.Options{})
	t.Cleanup(func() { st.Close() })
	d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: dialed(t, c), Keys: k, Graph: g, AgentsOnly: true, Prestart: true,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Name: "coord",
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	t.Cleanup(func() { d.Close() })
	eng := engine.New(st, d, engine.Options{Parallelism: 8, NoProgress: true})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	done := make(chan runOut, 1)
	go func() {
		res, err := eng.Start(ctx, g)
		done <- runOut{res.RunID, res.Status, err}
	}()
	runs := filepath.Join(dir, "runs.txt")
	waitFor(t, 60*time.Second, "ten steps ran", func() bool { return len(counts(t, runs)) >= 10 })
	wasLeader := c.Leader(10*time.Second) == m
	c.Pause(m)
	paused := time.Now()
	if wasLeader {
		next := c.Leader(10 * time.Second)
		t.Logf("member %d (the leader) paused after %d steps; member %d leads %s after", m, len(counts(t, runs)), next, time.Since(paused).Round(time.Millisecond))
	} else {
		t.Logf("member %d (a follower) paused after %d steps", m, len(counts(t, runs)))
	}
	var o runOut
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatalf("the run did not end with member %d paused", m)
	}
	took := time.Since(paused)
	if o.err != nil || o.st != state.RunSucceeded {
		t.Fatalf("run: %s %v", o.st, o.err)
	}
	ranOnce(t, runs, "s", n)
	s, at, med := stall(starts(t, dir), paused)
	t.Logf("the run ended %s after the pause; longest time between two steps' starts: %s more than the median (%s), from %s after the pause",
		took.Round(time.Millisecond), s.Round(time.Millisecond), med.Round(time.Millisecond), at.Round(time.Millisecond))
	if s > limit {
		t.Errorf("the run stalled %s (beyond the usual %s between two steps) with member %d paused, want at most %s", s.Round(time.Millisecond), med.Round(time.Millisecond), m, limit)
	}
	var odd []string
	if err := st.Journal(o.runID, 0, func(e state.Entry) error {
		if e.Type == cluster.EntryAgentLost || e.Type == cluster.EntryResultRefused {
			odd = append(odd, fmt.Sprintf("%s %s: %s", e.Type, e.NodeID, e.Message))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(odd) > 0 {
		t.Errorf("the journal has %q: the agent's lease (TTL %s) should have been kept", odd, cluster.DefaultTTL)
	}
	verify(t, st, o.runID, "with the member paused")

	// Resumed, the member catches up: at the leader's revision it holds
	// the run's keys as the others do, and the run verifies read
	// through it alone.
	c.Resume(m)
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	ref := dialed(t, c)
	want, err := ref.Get(rctx, u.Key(""), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	alone, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoints()[m]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	resumed := time.Now()
	for {
		got, err := alone.Get(rctx, u.Key(""), clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithRev(want.Header.Revision))
		if err == nil && sameKVs(got, want) {
			break
		}
		if rctx.Err() != nil {
			t.Fatalf("member %d, resumed, does not hold the run's %d keys at revision %d: %v", m, len(want.Kvs), want.Header.Revision, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("member %d caught up %s after its resume (%d keys at revision %d)", m, time.Since(resumed).Round(time.Millisecond), len(want.Kvs), want.Header.Revision)
	through := etcdstate.New(alone, u, etcdstate.Options{})
	defer through.Close()
	verify(t, through, o.runID, fmt.Sprintf("read through member %d resumed", m))
}

func sameKVs(a, b *clientv3.GetResponse) bool {
	if len(a.Kvs) != len(b.Kvs) {
		return false
	}
	for i := range a.Kvs {
		x, y := a.Kvs[i], b.Kvs[i]
		if string(x.Key) != string(y.Key) || string(x.Value) != string(y.Value) || x.ModRevision != y.ModRevision {
			return false
		}
	}
	return true
}

// verify checks the run's journal as `reprise log --verify` does.
func verify(t *testing.T, st *etcdstate.Store, run, when string) {
	t.Helper()
	rep, err := st.Verify(run)
	if err != nil || !rep.OK {
		t.Fatalf("verify %s: %+v %v", when, rep, err)
	}
}
