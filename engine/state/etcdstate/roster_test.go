package etcdstate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// TestRosterPendingNodes: a new run's plain pending nodes get no key of
// their own (the roster lists them, in chunks of at most ChunkSize), and
// every reader still sees each of them pending until its first change.
func TestRosterPendingNodes(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	// Long ids, so that the roster takes more than one chunk; enough of
	// them that Nodes reads the keys in two pages at once.
	const n = 2100
	pad := strings.Repeat("x", 200)
	var nodes []state.NodeRecord
	for i := 0; i < n; i++ {
		nodes = append(nodes, state.NodeRecord{ID: fmt.Sprintf("n%04d-%s", i, pad), State: state.NodePending})
	}
	nodes = append(nodes, state.NodeRecord{ID: "skipped", State: state.NodeSkipped})
	if err := st.CreateRun(context.Background(), state.Run{ID: "r1", Created: t0}, snap, nodes); err != nil {
		t.Fatal(err)
	}
	var nodeKeys, rosterKeys int
	for k, v := range keysUnder(t, cli, u) {
		switch {
		case strings.Contains(k, "/runs/nodes/r1/"):
			nodeKeys++
		case strings.Contains(k, "/runs/roster/r1/"):
			rosterKeys++
			if len(v) > etcdstate.ChunkSize {
				t.Errorf("roster chunk %s: %d bytes", k, len(v))
			}
		}
	}
	if nodeKeys != 1 || rosterKeys != 2 {
		t.Errorf("%d node keys and %d roster chunks, want 1 (skipped) and 2", nodeKeys, rosterKeys)
	}
	got, err := st.Nodes("r1")
	if err != nil || len(got) != n+1 {
		t.Fatalf("Nodes: %d, %v", len(got), err)
	}
	for i, rec := range got[:n] {
		if rec.ID != nodes[i].ID || rec.State != state.NodePending {
			t.Fatalf("node %d = %+v", i, rec)
		}
	}
	if got[n].ID != "skipped" || got[n].State != state.NodeSkipped {
		t.Errorf("last node %+v", got[n])
	}
	first, second := nodes[0].ID, nodes[1].ID
	if rec, err := st.Node("r1", first); err != nil || rec.State != state.NodePending {
		t.Errorf("Node(%s) = %+v, %v", first[:5], rec, err)
	}
	if _, err := st.Node("r1", "nope"); !errors.Is(err, state.ErrNodeNotFound) {
		t.Errorf("Node(nope) = %v, want ErrNodeNotFound", err)
	}

	// A change writes the node's record (in the transaction's node block); a
	// removal writes an empty one.
	if err := st.Apply(context.Background(),
		state.Change{RunID: "r1", Node: &state.NodeRecord{ID: first, State: state.NodeRunning},
			Entry: &state.Entry{Type: state.EntryStarted, NodeID: first, State: state.NodeRunning}},
		state.Change{RunID: "r1", RemoveNode: second},
		state.Change{RunID: "r1", Node: &state.NodeRecord{ID: nodes[n-2].ID, State: state.NodeSucceeded}},
		state.Change{RunID: "r1", RemoveNode: nodes[n-1].ID}); err != nil {
		t.Fatal(err)
	}
	if rec, err := st.Node("r1", first); err != nil || rec.State != state.NodeRunning {
		t.Errorf("Node(first) after its start = %+v, %v", rec, err)
	}
	if _, err := st.Node("r1", second); !errors.Is(err, state.ErrNodeNotFound) {
		t.Errorf("Node(second) after its removal = %v, want ErrNodeNotFound", err)
	}
	got, _ = st.Nodes("r1")
	if len(got) != n-1 || got[0].State != state.NodeRunning || got[1].ID != nodes[2].ID ||
		got[n-3].ID != nodes[n-2].ID || got[n-3].State != state.NodeSucceeded || got[n-2].ID != "skipped" {
		t.Errorf("Nodes after changes and removals in both pages: %d, first %+v", len(got), got[0])
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Records != n-1 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}

	// Copied to a file, every record is there, as if each had its key.
	c, err := st.ExportRun("r1")
	if err != nil || len(c.Nodes) != n-1 {
		t.Fatalf("ExportRun: %d nodes, %v", len(c.Nodes), err)
	}
	f := mustFile(t)
	if err := f.ImportRun(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if fn, err := f.Nodes("r1"); err != nil || len(fn) != n-1 || fn[5].State != state.NodePending {
		t.Errorf("Nodes of the copy: %d, %v", len(fn), err)
	}

	// The block of the started node deleted behind reprise's back: its record
	// falls back to pending, which its journal contradicts.
	if _, err := cli.Delete(context.Background(), u.Key("runs/nblk/r1/"), clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if rep, err := st.Verify("r1"); err != nil || rep.OK || rep.Level != "records" {
		t.Errorf("Verify after the record was deleted = %+v, %v; want level records", rep, err)
	}
	// A damaged roster is an error naming its key, never a panic.
	put(t, cli, u.Key("runs/roster/r1/0000"), []byte{0xff})
	var ce *state.CorruptError
	if _, err := st.Nodes("r1"); !errors.As(err, &ce) || !strings.Contains(err.Error(), "runs/roster/r1/0000") {
		t.Errorf("Nodes over a damaged roster = %v", err)
	}
	if resp, err := cli.Get(context.Background(), u.Key("runs/roster/"), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 2 {
		t.Errorf("roster chunks: %v %v", resp, err)
	}
}
