package etcdstate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// TestNodeOldLayoutReads: a run whose records are under the nodes' own
// keys (as the first versions of this package wrote every record, and as
// a copy stores them) reads as before, and merges with the blocks written
// after it: the newest key of a node gives its record, whichever kind.
func TestNodeOldLayoutReads(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 6)
	own := func(id string, rec *state.NodeRecord) {
		t.Helper()
		var b []byte
		if rec != nil {
			var err error
			if b, err = state.EncodeNode(rec); err != nil {
				t.Fatal(err)
			}
		}
		put(t, cli, u.Key("runs/nodes/r1/"+id), b)
	}
	own("n000", &state.NodeRecord{ID: "n000", State: state.NodeRunning, Attempts: 1})
	own("n001", &state.NodeRecord{ID: "n001", State: state.NodeSucceeded, Outputs: map[string]string{"ip": "10.0.0.1"}})
	own("n002", nil) // removed
	own("n003", &state.NodeRecord{ID: "n003", State: state.NodeFailed, LastError: "disk"})
	check := func(want map[string]state.NodeState) {
		t.Helper()
		got, err := st.Nodes("r1")
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]state.NodeState{}
		for _, n := range got {
			states[n.ID] = n.State
			if one, err := st.Node("r1", n.ID); err != nil || one.State != n.State {
				t.Errorf("Node(%s) = %+v, %v; Nodes says %s", n.ID, one, err, n.State)
			}
		}
		if fmt.Sprint(states) != fmt.Sprint(want) {
			t.Errorf("states %v\nwant %v", states, want)
		}
		if _, err := st.Node("r1", "n002"); !errors.Is(err, state.ErrNodeNotFound) {
			t.Errorf("Node(n002), removed: %v", err)
		}
	}
	check(map[string]state.NodeState{"n000": state.NodeRunning, "n001": state.NodeSucceeded, "n003": state.NodeFailed,
		"n004": state.NodePending, "n005": state.NodePending, "skipped": state.NodeSkipped})

	// The store writes blocks over them; the own keys stay as they were.
	if err := st.Apply(context.Background(), nodeChange("r1", "n000", state.NodeSucceeded, 1, 0),
		nodeChange("r1", "n004", state.NodeRunning, 2, 0)); err != nil {
		t.Fatal(err)
	}
	if n := ownKeys(t, cli, u, "r1"); n != 5 || len(blockKeys(t, cli, u, "r1")) != 1 {
		t.Fatalf("%d own keys and blocks %v, want the 5 of before and one block", n, blockKeys(t, cli, u, "r1"))
	}
	check(map[string]state.NodeState{"n000": state.NodeSucceeded, "n001": state.NodeSucceeded, "n003": state.NodeFailed,
		"n004": state.NodeRunning, "n005": state.NodePending, "skipped": state.NodeSkipped})
	// An own key written after the block (an earlier version of reprise
	// resuming the run) wins over it.
	own("n004", &state.NodeRecord{ID: "n004", State: state.NodeBlocked})
	check(map[string]state.NodeState{"n000": state.NodeSucceeded, "n001": state.NodeSucceeded, "n003": state.NodeFailed,
		"n004": state.NodeBlocked, "n005": state.NodePending, "skipped": state.NodeSkipped})
	// A second store reads where the records are from scratch: n004's
	// block holds n000's current record still, so it stays.
	b, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Apply(context.Background(), nodeChange("r1", "n005", state.NodeRunning, 3, 0)); err != nil {
		t.Fatal(err)
	}
	check(map[string]state.NodeState{"n000": state.NodeSucceeded, "n001": state.NodeSucceeded, "n003": state.NodeFailed,
		"n004": state.NodeBlocked, "n005": state.NodeRunning, "skipped": state.NodeSkipped})
	if err := b.Apply(context.Background(), nodeChange("r1", "n000", state.NodeRunning, 4, 0)); err != nil {
		t.Fatal(err)
	}
	if blocks := blockKeys(t, cli, u, "r1"); len(blocks) != 2 {
		t.Errorf("blocks %v, want two: the first held nothing current any more", blocks)
	}
	check(map[string]state.NodeState{"n000": state.NodeRunning, "n001": state.NodeSucceeded, "n003": state.NodeFailed,
		"n004": state.NodeBlocked, "n005": state.NodeRunning, "skipped": state.NodeSkipped})
}

// TestNodeBlocksCopyRoundTrip: a run copied from a file to etcd (its
// records under their own keys), continued there (in blocks), and copied
// back to a file keeps every record; Verify is OK on each side.
func TestNodeBlocksCopyRoundTrip(t *testing.T) {
	cli := rawClient(t)
	f := mustFile(t)
	createRun(t, f, "r1", 12)
	script(t, f, "r1", 4)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	copyRun(t, f, st, "r1")
	var changes []state.Change
	for i := 2; i < 8; i++ {
		changes = append(changes, nodeChange("r1", fmt.Sprintf("n%03d", i), state.NodeSucceeded, 100+i, 10))
	}
	changes = append(changes, state.Change{RunID: "r1", RemoveNode: "n010"})
	applyBoth(t, st, f, changes...)
	applyBoth(t, st, f, nodeChange("r1", "n008", state.NodeRunning, 200, 0))
	if len(blockKeys(t, cli, u, "r1")) != 2 {
		t.Fatalf("blocks %v, want 2", blockKeys(t, cli, u, "r1"))
	}
	sameRecords(t, st, f, "r1", "n010")
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Records != 12 {
		t.Fatalf("Verify on etcd = %+v, %v", rep, err)
	}
	f2 := mustFile(t)
	copyRun(t, st, f2, "r1")
	sameRecords(t, f2, f, "r1", "n010")
	if rep, err := f2.Verify("r1"); err != nil || !rep.OK || rep.Records != 12 {
		t.Fatalf("Verify of the copy back = %+v, %v", rep, err)
	}
}

// TestCorruptNodeBlock: a damaged block is *state.CorruptError naming its
// key for every reader and for a writer reading where records are, never
// a panic, whatever the damage; a block whose records were changed is
// caught by Verify at the records level.
func TestCorruptNodeBlock(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 4)
	script(t, st, "r1", 2)
	blocks := blockKeys(t, cli, u, "r1")
	if len(blocks) != 2 {
		t.Fatalf("blocks %v, want the two succeeded", blocks)
	}
	key := u.Key("runs/nblk/r1/" + blocks[1])
	good := keysUnder(t, cli, u)[key]
	// Every cut and a byte changed anywhere: an error or records, never a
	// panic; the cuts inside a record are errors.
	for i := 0; i < len(good); i++ {
		put(t, cli, key, good[:i])
		_, err := st.Nodes("r1")
		var ce *state.CorruptError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("Nodes over %d bytes of the block: %v", i, err)
		}
		if i < len(good)-1 && i > 0 && err == nil && i != 1 {
			t.Fatalf("Nodes over %d bytes of %d of the block: no error", i, len(good))
		}
		bad := bytes.Clone(good)
		bad[i] ^= 0xa5
		put(t, cli, key, bad)
		if _, err := st.Node("r1", "n001"); err != nil && !errors.As(err, &ce) && !errors.Is(err, state.ErrNodeNotFound) {
			t.Fatalf("Node over the block with byte %d changed: %v", i, err)
		}
	}
	put(t, cli, key, []byte{0x01, 0x04, 'n', '0', '0', '1', 0xff})
	wantReadersCorrupt(t, st, u, key, "n001", nodeChange("r1", "n003", state.NodeRunning, 9, 0))

	// Whole, but a record changed behind reprise's back.
	rec, _ := state.EncodeNode(&state.NodeRecord{ID: "n001", State: state.NodeFailed})
	put(t, cli, key, oneRecordBlock("n001", rec))
	if rep, err := st.Verify("r1"); err != nil || rep.OK || rep.Level != "records" {
		t.Errorf("Verify after a block's record was changed = %+v, %v; want level records", rep, err)
	}
}

// oneRecordBlock is a node block holding one record (nodeblock.go), as
// written by hand.
func oneRecordBlock(id string, rec []byte) []byte {
	b := append([]byte{0x01, byte(len(id))}, id...)
	return append(append(b, byte(len(rec))), rec...)
}

// TestNodeBlockOrphanDeleted: a block that holds no current record when a
// writer reads where the records are (left by a writer that did not know
// of later records) goes with that writer's next node records.
func TestNodeBlockOrphanDeleted(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 3)
	rec, _ := state.EncodeNode(&state.NodeRecord{ID: "n000", State: state.NodeRunning})
	put(t, cli, u.Key("runs/nblk/r1/0000000000000001"), oneRecordBlock("n000", rec))
	rec, _ = state.EncodeNode(&state.NodeRecord{ID: "n000", State: state.NodeFailed})
	put(t, cli, u.Key("runs/nodes/r1/n000"), rec) // later: n000 is failed
	if n, err := st.Node("r1", "n000"); err != nil || n.State != state.NodeFailed {
		t.Fatalf("Node(n000) = %+v, %v", n, err)
	}
	if err := st.Apply(context.Background(), nodeChange("r1", "n001", state.NodeRunning, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if blocks := blockKeys(t, cli, u, "r1"); len(blocks) != 1 || blocks[0] != "0000000000000002" {
		t.Errorf("blocks %v, want only n001's: the orphan went with it", blocks)
	}
	if n, err := st.Node("r1", "n000"); err != nil || n.State != state.NodeFailed {
		t.Errorf("Node(n000) after = %+v, %v", n, err)
	}
}

// wantReadersCorrupt checks that every reader of run r1's node records
// (Nodes, Node of node, Verify, ExportRun) and a writer that has not read
// where they are yet (its Apply of change) refuse with a
// *state.CorruptError naming key.
func wantReadersCorrupt(t *testing.T, st *etcdstate.Store, u etcdconn.URL, key, node string, change state.Change) {
	t.Helper()
	wantCorrupt := func(what string, err error) {
		t.Helper()
		var ce *state.CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want *state.CorruptError naming %s", what, err, key)
		}
	}
	_, err := st.Nodes("r1")
	wantCorrupt("Nodes", err)
	_, err = st.Node("r1", node)
	wantCorrupt("Node", err)
	_, err = st.Verify("r1")
	wantCorrupt("Verify", err)
	_, err = st.ExportRun("r1")
	wantCorrupt("ExportRun", err)
	w, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wantCorrupt("Apply", w.Apply(context.Background(), change))
}
