package etcdstate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// pendingNodes is n pending node records.
func pendingNodes(n int) []state.NodeRecord {
	recs := make([]state.NodeRecord, n)
	for i := range recs {
		recs[i] = state.NodeRecord{ID: fmt.Sprintf("n%d", i), State: state.NodePending}
	}
	return recs
}

// createRevs creates run r1 of nodes nodes on st and returns how many
// revisions of the cluster the creation took (one a transaction), with
// nothing else writing under u's prefix.
func createRevs(t *testing.T, st *etcdstate.Store, cli *clientv3.Client, nodes int) int64 {
	t.Helper()
	ctx := context.Background()
	before, err := cli.Get(ctx, "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	snap := zonedGraph(nodes)
	if err := st.CreateRun(ctx, state.Run{ID: "r1", GraphName: "g", Created: t0}, snap, pendingNodes(nodes)); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	after, err := cli.Get(ctx, "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Snapshot("r1")
	if err != nil || string(got) != string(snap) {
		t.Fatalf("Snapshot: %d bytes, %v", len(got), err)
	}
	nodesGot, err := st.Nodes("r1")
	if err != nil || len(nodesGot) != nodes {
		t.Fatalf("Nodes: %d, %v; want %d", len(nodesGot), err, nodes)
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	return after.Header.Revision - before.Header.Revision
}

// TestCreateRunOneTransaction: a new run of 10,000 nodes, its roster and
// snapshot included, is created in one transaction (one revision) when
// nothing is stored under its id; it reads back whole and verifies.
func TestCreateRunOneTransaction(t *testing.T) {
	st, _ := mustEtcd(t, nil, etcdstate.Options{})
	if revs := createRevs(t, st, rawClient(t), 10000); revs != 1 {
		t.Errorf("creation took %d revisions, want 1 (one transaction)", revs)
	}
	if err := st.CreateRun(context.Background(), state.Run{ID: "r1", Created: t0}, zonedGraph(3), nil); err == nil || !strings.Contains(err.Error(), state.ErrRunExists.Error()) {
		t.Errorf("CreateRun again = %v, want ErrRunExists", err)
	}
}

// TestCreateRunAfterCutShort: keys a creation cut short left under the id
// (a node record, a journal entry) make the creation take the usual way:
// the id claimed, the leftovers cleared, then the run written. Nothing of
// them remains.
func TestCreateRunAfterCutShort(t *testing.T) {
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	cli := rawClient(t)
	ctx := context.Background()
	stray := []string{u.Root() + "runs/nodes/r1/ghost", u.Root() + "runs/journal/r1/00000000000000ff"}
	for _, k := range stray {
		if _, err := cli.Put(ctx, k, "left by a creation cut short"); err != nil {
			t.Fatal(err)
		}
	}
	if revs := createRevs(t, st, cli, 300); revs < 3 {
		t.Errorf("creation over leftovers took %d revisions, want the usual three or more (claim, records, run)", revs)
	}
	for _, k := range stray {
		if resp, err := cli.Get(ctx, k); err != nil || len(resp.Kvs) != 0 {
			t.Errorf("%s still there after the creation (%v)", k, err)
		}
	}
}

// TestCreateRunTooBigForOne: a creation that does not fit in one
// transaction (a small MaxTxnBytes) takes the usual way, and is whole.
func TestCreateRunTooBigForOne(t *testing.T) {
	st, _ := mustEtcd(t, nil, etcdstate.Options{MaxTxnBytes: 64 << 10})
	if revs := createRevs(t, st, rawClient(t), 10000); revs < 3 {
		t.Errorf("creation over MaxTxnBytes took %d revisions, want several", revs)
	}
}
