package etcdstate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// blockKeys returns the node block keys of run under u's prefix, sorted.
func blockKeys(t *testing.T, cli *clientv3.Client, u etcdconn.URL, run string) []string {
	t.Helper()
	resp, err := cli.Get(context.Background(), u.Key("runs/nblk/"+run+"/"), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), u.Key("runs/nblk/"+run+"/")))
	}
	return out
}

// ownKeys counts the nodes' own keys of run under u's prefix.
func ownKeys(t *testing.T, cli *clientv3.Client, u etcdconn.URL, run string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), u.Key("runs/nodes/"+run+"/"), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// nodeChange sets node id to st (with an output of pad bytes when it
// succeeded) and journals it.
func nodeChange(run, id string, st state.NodeState, i, pad int) state.Change {
	at := t0.Add(time.Duration(i) * time.Second)
	rec := state.NodeRecord{ID: id, State: st, Attempts: 1, Started: at}
	typ := state.EntryStarted
	if st == state.NodeSucceeded {
		rec.Ended, rec.Outputs, typ = at, map[string]string{"out": fmt.Sprintf("%d-%s", i, strings.Repeat("x", pad))}, state.EntrySucceeded
	}
	return state.Change{RunID: run, Node: &rec, Entry: &state.Entry{Time: at, Type: typ, NodeID: id, State: st, Attempt: 1}}
}

// pairRun creates run r1 of n nodes on a fresh etcd store and on a
// reference file.
func pairRun(t *testing.T, n int) (*etcdstate.Store, etcdconn.URL, *state.Store) {
	t.Helper()
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	ref := mustFile(t)
	createRun(t, st, "r1", n)
	createRun(t, ref, "r1", n)
	return st, u, ref
}

// applyBoth applies changes to the etcd store and to the reference file.
func applyBoth(t *testing.T, st, ref state.Backend, changes ...state.Change) {
	t.Helper()
	for _, b := range []state.Backend{st, ref} {
		if err := b.Apply(context.Background(), changes...); err != nil {
			t.Fatalf("%s: Apply: %v", b.Path(), err)
		}
	}
}

// sameRecords wants st to give ref's node records of run through Nodes,
// Node (removed nodes: ErrNodeNotFound) and ExportRun.
func sameRecords(t *testing.T, st, ref state.Backend, run string, removed ...string) {
	t.Helper()
	want, err := ref.Nodes(run)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Nodes(run)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Nodes: %d records\n got %+v\nwant %+v", len(got), got, want)
	}
	for _, w := range want {
		if n, err := st.Node(run, w.ID); err != nil || !reflect.DeepEqual(n, w) {
			t.Fatalf("Node(%s) = %+v, %v; want %+v", w.ID, n, err, w)
		}
	}
	for _, id := range removed {
		if _, err := st.Node(run, id); !errors.Is(err, state.ErrNodeNotFound) {
			t.Fatalf("Node(%s) of a removed node: %v", id, err)
		}
	}
	c, err := st.(state.Copier).ExportRun(run)
	if err != nil || len(c.Nodes) != len(want) {
		t.Fatalf("ExportRun: %d records, %v", len(c.Nodes), err)
	}
	for i, n := range c.Nodes {
		if rec, err := state.DecodeNode(n.Stored); err != nil || !reflect.DeepEqual(rec, want[i]) {
			t.Fatalf("ExportRun: record %d = %+v, %v; want %+v", i, rec, err, want[i])
		}
	}
}

// TestNodeBlocksReadBack: the records one transaction writes for a run
// are one key, named by its last journal entry, and not the nodes' own
// keys; records spread over many blocks (more than Node reads in one page)
// and over parts of a block bigger than ChunkSize read back as the file's.
func TestNodeBlocksReadBack(t *testing.T) {
	cli := rawClient(t)
	st, u, ref := pairRun(t, 200)
	for i := 0; i < 150; i++ {
		applyBoth(t, st, ref, nodeChange("r1", fmt.Sprintf("n%03d", i), state.NodeRunning, i, 0))
	}
	if b := blockKeys(t, cli, u, "r1"); len(b) != 150 || b[0] != "0000000000000002" || b[149] != "0000000000000097" {
		t.Fatalf("%d blocks (%v…), want 150 named by entries 2…151", len(b), b[:min(len(b), 3)])
	}
	if n := ownKeys(t, cli, u, "r1"); n != 1 {
		t.Fatalf("%d own node keys, want 1 (the skipped node, written by CreateRun)", n)
	}
	sameRecords(t, st, ref, "r1")

	// One transaction: 80 nodes succeeded with 4 KB of outputs each (two
	// parts), a removal; the blocks of n100…n149's starts go.
	var changes []state.Change
	for i := 100; i < 180; i++ {
		changes = append(changes, nodeChange("r1", fmt.Sprintf("n%03d", i), state.NodeSucceeded, i, 4096))
	}
	changes = append(changes, state.Change{RunID: "r1", RemoveNode: "n190"})
	applyBoth(t, st, ref, changes...)
	b := blockKeys(t, cli, u, "r1")
	if len(b) != 102 || !strings.HasSuffix(b[101], "-1") || b[99] != "0000000000000065" {
		t.Fatalf("%d blocks, last %v; want 100 starts and one block of two parts", len(b), b[98:])
	}
	sameRecords(t, st, ref, "r1", "n190")
	// A reader that is not the writer.
	ro, err := etcdstate.Open(context.Background(), u, etcdstate.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	sameRecords(t, ro, ref, "r1", "n190")
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Records != 200 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestNodeBlockSupersededDeleted: a block goes in the transaction that
// writes a later record of the last node it held current.
func TestNodeBlockSupersededDeleted(t *testing.T) {
	cli := rawClient(t)
	st, u, ref := pairRun(t, 3)
	step := func(want []string, changes ...state.Change) {
		t.Helper()
		applyBoth(t, st, ref, changes...)
		if got := blockKeys(t, cli, u, "r1"); !slices.Equal(got, want) {
			t.Fatalf("blocks %v, want %v", got, want)
		}
		sameRecords(t, st, ref, "r1")
	}
	// Entries 2 and 3: block 3 holds both starts.
	step([]string{"0000000000000003"},
		nodeChange("r1", "n000", state.NodeRunning, 1, 0), nodeChange("r1", "n001", state.NodeRunning, 2, 0))
	// n000 succeeded: block 3 still holds n001's start.
	step([]string{"0000000000000003", "0000000000000004"}, nodeChange("r1", "n000", state.NodeSucceeded, 3, 0))
	// n001 succeeded: block 3 holds nothing current any more.
	step([]string{"0000000000000004", "0000000000000005"}, nodeChange("r1", "n001", state.NodeSucceeded, 4, 0))
	// n000 removed (an empty record in block 6), n001 started again in
	// the same transaction: blocks 4 and 5 go.
	step([]string{"0000000000000007"}, state.Change{RunID: "r1", RemoveNode: "n000"},
		nodeChange("r1", "n001", state.NodeRunning, 5, 0))
	if _, err := st.Node("r1", "n000"); !errors.Is(err, state.ErrNodeNotFound) {
		t.Fatalf("Node(n000) after its removal: %v", err)
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestNodeBlocksTwoWriters: two stores (two machines) write the same run,
// in turn and then at once: each finds out the other moved the head, reads
// where the records are again, and neither loses a current record nor
// leaves superseded blocks behind.
func TestNodeBlocksTwoWriters(t *testing.T) {
	cli := rawClient(t)
	const nodes = 12
	a, u, ref := pairRun(t, nodes)
	b, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	writers := []*etcdstate.Store{a, b}
	for i := 0; i < 40; i++ {
		// Overlapping sets of one to three nodes, in turn.
		var changes []state.Change
		for j := 0; j <= i%3; j++ {
			id := fmt.Sprintf("n%03d", (i*5+j*7)%nodes)
			st := state.NodeRunning
			if (i+j)%2 == 1 {
				st = state.NodeSucceeded
			}
			changes = append(changes, nodeChange("r1", id, st, i*3+j, 0))
		}
		applyBoth(t, writers[i%2], ref, changes...)
		sameRecords(t, writers[(i+1)%2], ref, "r1")
		if blocks := blockKeys(t, cli, u, "r1"); len(blocks) > nodes {
			t.Fatalf("after %d transactions, %d blocks for %d nodes: superseded ones left", i+1, len(blocks), nodes)
		}
	}

	// At once, on nodes of their own: a's even, b's odd.
	want := map[string]state.NodeState{}
	errs := make(chan error, 2)
	for w, st := range writers {
		go func() {
			for i := 0; i < 30; i++ {
				var changes []state.Change
				for j := 0; j < 2; j++ {
					id := fmt.Sprintf("n%03d", (2*(i+j)+w)%nodes)
					s := []state.NodeState{state.NodeRunning, state.NodeSucceeded, state.NodeFailed}[(i+j)%3]
					changes = append(changes, nodeChange("r1", id, s, 1000+i, 0))
				}
				if err := st.Apply(context.Background(), changes...); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := range writers {
		for i := 0; i < 30; i++ {
			for j := 0; j < 2; j++ {
				want[fmt.Sprintf("n%03d", (2*(i+j)+w)%nodes)] = []state.NodeState{state.NodeRunning, state.NodeSucceeded, state.NodeFailed}[(i+j)%3]
			}
		}
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Nodes("r1")
	if err != nil || len(got) != nodes+1 {
		t.Fatalf("Nodes: %d, %v", len(got), err)
	}
	for _, n := range got[:nodes] {
		if n.State != want[n.ID] {
			t.Errorf("node %s is %s, want %s (its writer's last)", n.ID, n.State, want[n.ID])
		}
	}
	if rep, err := a.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// One more write by each reads again where the records are, and
	// leaves no superseded block.
	for i, st := range writers {
		if err := st.Apply(context.Background(), nodeChange("r1", fmt.Sprintf("n%03d", i), state.NodeRunning, 2000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if blocks := blockKeys(t, cli, u, "r1"); len(blocks) > nodes {
		t.Errorf("%d blocks for %d nodes after both wrote again", len(blocks), nodes)
	}
	if n := ownKeys(t, cli, u, "r1"); n != 1 {
		t.Errorf("%d own node keys, want 1 (the skipped node's): the records are in blocks", n)
	}
}
