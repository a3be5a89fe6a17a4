package etcdstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// told waits for a value on ch, failing after limit; it says how long it
// took.
func told(t *testing.T, ch <-chan struct{}, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the watch was closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not told within 10 s", what)
	}
	return time.Since(start)
}

// quiet fails if ch gets a value within d.
func quiet(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: told of a change", what)
	case <-time.After(d):
	}
}

// TestWatchOperators: WatchOperators tells of each change of the
// operators after the revision given — an operator added, given a new
// token, revoked, and a record deleted with an etcd client directly (no
// guard put) — and of nothing else written under the state's prefix; a
// change made before the watch started but after its revision is told
// too. Its channel is closed when its context ends.
func TestWatchOperators(t *testing.T) {
	t.Parallel()
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	cli := rawClient(t)
	_, rev, err := st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	op := state.Operator{Name: "amy", Role: "operator", Hash: "h1", CreatedBy: "test"}
	if err := st.PutOperator(op); err != nil { // after rev, before the watch
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := st.WatchOperators(ctx, rev)
	told(t, ch, "an operator added after the revision, before the watch")
	quiet(t, ch, 300*time.Millisecond, "nothing more")

	op.Hash = "h2"
	if err := st.PutOperator(op); err != nil {
		t.Fatal(err)
	}
	t.Logf("a new token told in %s", told(t, ch, "a new token"))
	if err := st.DeleteOperator("amy"); err != nil {
		t.Fatal(err)
	}
	told(t, ch, "a revoke")
	put(t, cli, u.Root()+"operators/eve", []byte(`{"name":"eve","role":"admin"}`))
	told(t, ch, "an operator written with etcd's client")
	if _, err := cli.Delete(context.Background(), u.Root()+"operators/eve"); err != nil {
		t.Fatal(err)
	}
	told(t, ch, "an operator deleted with etcd's client (no guard)")
	put(t, cli, u.Root()+"runs/rec/x", []byte("{}"))
	put(t, cli, u.Root()+"operatorz", []byte("x"))
	quiet(t, ch, 300*time.Millisecond, "writes that are not the operators'")

	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch was not closed when its context ended")
	}
}

// TestWatchOperatorsCompacted: a watch from a revision etcd compacted
// since tells at once (a change there may be lost: read them again), and
// goes on telling of the changes after. Its own cluster: the compaction
// would break the shared cluster's other tests' watches.
func TestWatchOperatorsCompacted(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	st, _ := mustEtcd(t, c, etcdstate.Options{})
	cli := c.Client(t)
	_, rev, err := st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutOperator(state.Operator{Name: "amy", Role: "admin", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := st.WatchOperators(ctx, rev)
	told(t, ch, "a watch from a compacted revision")
	quiet(t, ch, 300*time.Millisecond, "nothing more")
	if err := st.DeleteOperator("amy"); err != nil {
		t.Fatal(err)
	}
	told(t, ch, "a revoke after the compaction")
}
