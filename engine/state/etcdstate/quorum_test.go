package etcdstate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestQuorumLostMidApply takes two members of three away: Apply blocks
// (nothing is durable, so the caller must not go on), completes by itself
// once they are back, and the chain is whole. Then, quorum lost again: a
// cancelled context returns at once, and Interrupt makes a waiting Apply
// give up.
func TestQuorumLostMidApply(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts etcd members")
	}
	c := etcdtest.Start(t, 3)
	st, u := mustEtcd(t, c, etcdstate.Options{AttemptTimeout: 500 * time.Millisecond})
	createRun(t, st, "r1", 3)
	apply := func(ctx context.Context, nid string) chan error {
		done := make(chan error, 1)
		go func() {
			done <- st.Apply(ctx, state.Change{RunID: "r1",
				Node:  &state.NodeRecord{ID: nid, State: state.NodeRunning},
				Entry: &state.Entry{Type: state.EntryStarted, NodeID: nid, State: state.NodeRunning}})
		}()
		return done
	}

	c.Stop(1)
	c.Stop(2)
	done := apply(context.Background(), "n000")
	select {
	case err := <-done:
		t.Fatalf("Apply returned %v with one member of three", err)
	case <-time.After(2 * time.Second):
	}
	c.Restart(1)
	c.Restart(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Apply after the quorum came back: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Apply still blocked 30 s after the quorum came back")
	}
	if n, err := st.Node("r1", "n000"); err != nil || n.State != state.NodeRunning {
		t.Fatalf("n000 = %+v, %v", n, err)
	}

	c.Stop(1)
	c.Stop(2)
	ctx, cancel := context.WithCancel(context.Background())
	done = apply(ctx, "n001")
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Apply with its context cancelled = %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Apply returned %s after its context was cancelled", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply did not return when its context was cancelled")
	}

	done = apply(context.Background(), "n002")
	time.Sleep(300 * time.Millisecond)
	st.Interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, etcdstate.ErrInterrupted) {
			t.Errorf("Apply after Interrupt = %v, want ErrInterrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply did not give up after Interrupt")
	}

	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(30 * time.Second)
	// An interrupted store belongs to a process that is stopping: read
	// back through a new one.
	st2, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	rep, err := st2.Verify("r1")
	if err != nil || !rep.OK {
		t.Fatalf("Verify after the faults = %+v, %v", rep, err)
	}
	// The changes of n001 and n002 may or may not have landed: a member
	// that led when the others stopped may have logged them, and their
	// callers were told so. The chain is whole either way.
}

// TestQuorumLostMidSplitApply: an Apply bigger than one transaction (low
// MaxTxnOps and MaxTxnBytes make it about a hundred) loses the quorum between two of its
// transactions; it waits, goes on by itself when the members are back, and
// every change lands once, in order, in one chain.
func TestQuorumLostMidSplitApply(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts etcd members")
	}
	c := etcdtest.Start(t, 3)
	st, _ := mustEtcd(t, c, etcdstate.Options{MaxTxnOps: 8, MaxTxnBytes: 8 << 10, AttemptTimeout: 500 * time.Millisecond})
	const n = 1000
	createRun(t, st, "r1", n)
	before := st.Stats().Commits
	done := make(chan error, 1)
	go func() { done <- st.Apply(context.Background(), bigChanges(st, "r1", n)...) }()
	deadline := time.Now().Add(30 * time.Second)
	for st.Stats().Commits < before+3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.Stop(1)
	c.Stop(2)
	cut := st.Stats().Commits - before
	select {
	case err := <-done:
		t.Fatalf("Apply returned %v with one member of three (after %d transactions)", err, cut)
	case <-time.After(2 * time.Second):
	}
	if cut >= n/8 {
		t.Fatalf("%d transactions before the quorum was lost: the Apply was not cut", cut)
	}
	c.Restart(1)
	c.Restart(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Apply after the quorum came back: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Apply still blocked 60 s after the quorum came back")
	}
	t.Logf("Apply cut after %d of %d transactions", cut, st.Stats().Commits-before)
	j := journalOf(t, st, "r1")
	if len(j) != 2*n+1 {
		t.Fatalf("%d entries, want %d", len(j), 2*n+1)
	}
	for i, e := range j {
		if e.Seq != uint64(i+1) || (i > 0 && e.Prev != j[i-1].Hash) {
			t.Fatalf("entry %d: seq %d prev %.8s", i+1, e.Seq, e.Prev)
		}
		if i > 0 && e.NodeID != fmt.Sprintf("n%03d", (i-1)/2) {
			t.Fatalf("entry %d is of node %s: out of order", i+1, e.NodeID)
		}
	}
	nodes, err := st.Nodes("r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes[:n] {
		if nd.State != state.NodeSucceeded {
			t.Fatalf("node %s is %s", nd.ID, nd.State)
		}
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != 2*n+1 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}
