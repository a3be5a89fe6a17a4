package etcdstate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// keysUnder returns every key and value under u's prefix.
func keysUnder(t *testing.T, cli *clientv3.Client, u etcdconn.URL) map[string][]byte {
	t.Helper()
	resp, err := cli.Get(context.Background(), u.Root(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.Value
	}
	return out
}

func put(t *testing.T, cli *clientv3.Client, k string, v []byte) {
	t.Helper()
	if _, err := cli.Put(context.Background(), k, string(v)); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCatchesTamperingOnEtcd changes what is stored in etcd behind
// reprise's back, one way at a time, and wants Verify to name the level.
func TestVerifyCatchesTamperingOnEtcd(t *testing.T) {
	cli := rawClient(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, u etcdconn.URL, kv map[string][]byte)
		level  string
	}{
		{"entry byte changed", func(t *testing.T, u etcdconn.URL, kv map[string][]byte) {
			k := u.Key("runs/journal/r1/0000000000000003")
			put(t, cli, k, bytes.Replace(kv[k], []byte(`"attempt":1`), []byte(`"attempt":2`), 1))
		}, "chain"},
		{"last entry removed", func(t *testing.T, u etcdconn.URL, kv map[string][]byte) {
			if _, err := cli.Delete(context.Background(), u.Key("runs/journal/r1/0000000000000008")); err != nil {
				t.Fatal(err)
			}
		}, "chain"},
		{"node record changed", func(t *testing.T, u etcdconn.URL, kv map[string][]byte) {
			rec := state.NodeRecord{ID: "n003", State: state.NodeSucceeded}
			b, _ := state.EncodeNode(&rec)
			put(t, cli, u.Key("runs/nodes/r1/n003"), b)
		}, "records"},
		{"run record status changed", func(t *testing.T, u etcdconn.URL, kv map[string][]byte) {
			k := u.Key("runs/rec/r1")
			put(t, cli, k, bytes.Replace(kv[k], []byte(`"status":"parked"`), []byte(`"status":"succeeded"`), 1))
		}, "run"},
		{"run record options changed", func(t *testing.T, u etcdconn.URL, kv map[string][]byte) {
			k := u.Key("runs/rec/r1")
			put(t, cli, k, bytes.Replace(kv[k], []byte(`"options":{}`), []byte(`"options":{"dry_run":true}`), 1))
		}, "run"},
		{"snapshot chunk replaced", func(t *testing.T, u etcdconn.URL, kv map[string][]byte) {
			for k := range kv {
				if strings.Contains(k, "/runs/snap/r1/") {
					put(t, cli, k, []byte("version: 1\nname: evil\n"))
				}
			}
		}, "snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, u := mustEtcd(t, nil, etcdstate.Options{})
			createRun(t, st, "r1", 5)
			script(t, st, "r1", 3)
			if rep, err := st.Verify("r1"); err != nil || !rep.OK {
				t.Fatalf("before: %+v %v", rep, err)
			}
			tt.tamper(t, u, keysUnder(t, cli, u))
			rep, err := st.Verify("r1")
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.Level != tt.level {
				t.Fatalf("Verify = %+v, want level %q", rep, tt.level)
			}
		})
	}
}

// TestCorruptValuesNeverPanic: garbage where records are gives
// *state.CorruptError naming the key.
func TestCorruptValuesNeverPanic(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 2)
	script(t, st, "r1", 1)
	garbage := []byte{0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	put(t, cli, u.Key("runs/nodes/r1/n001"), garbage)
	put(t, cli, u.Key("runs/journal/r1/0000000000000002"), []byte(`{"seq":2,`))
	put(t, cli, u.Key("operators/x"), []byte("{"))
	wantCorrupt := func(what string, err error, key string) {
		t.Helper()
		var ce *state.CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want *state.CorruptError naming %s", what, err, key)
		}
	}
	_, err := st.Nodes("r1")
	wantCorrupt("Nodes", err, "runs/nodes/r1/n001")
	_, err = st.Node("r1", "n001")
	wantCorrupt("Node", err, "runs/nodes/r1/n001")
	var seen []uint64
	err = st.Journal("r1", 0, func(e state.Entry) error { seen = append(seen, e.Seq); return nil })
	wantCorrupt("Journal", err, "runs/journal/r1/0000000000000002")
	if len(seen) != 1 {
		t.Errorf("Journal gave %v before the damaged entry, want [1]", seen)
	}
	_, err = st.Operators()
	wantCorrupt("Operators", err, "operators/x")
	put(t, cli, u.Key("runs/head/r1"), []byte("short"))
	err = st.Apply(context.Background(), state.Change{RunID: "r1", Entry: &state.Entry{Type: state.EntryRunResumed}})
	wantCorrupt("Apply over a bad head", err, "runs/head/r1")
	put(t, cli, u.Key("runs/rec/r1"), []byte("not json"))
	_, err = st.Run("r1")
	wantCorrupt("Run", err, "runs/rec/r1")
	if rep, err := st.Verify("r1"); err == nil && rep.OK {
		t.Errorf("Verify of a damaged run says OK")
	}
}

// bigApply is one Apply of 2n changes: n nodes started and succeeded.
func bigApply(t *testing.T, st state.Backend, run string, n int) {
	t.Helper()
	if err := st.Apply(context.Background(), bigChanges(st, run, n)...); err != nil {
		t.Fatal(err)
	}
}

// bigChanges are the changes of bigApply.
func bigChanges(st state.Backend, run string, n int) []state.Change {
	var changes []state.Change
	for i := 0; i < n; i++ {
		nid := fmt.Sprintf("n%03d", i)
		changes = append(changes, state.Change{RunID: run,
			Node:  &state.NodeRecord{ID: nid, State: state.NodeRunning},
			Entry: &state.Entry{Type: state.EntryStarted, NodeID: nid, State: state.NodeRunning, Message: st.Path()}})
		// The same node twice in one batch: one key written twice.
		changes = append(changes, state.Change{RunID: run,
			Node:  &state.NodeRecord{ID: nid, State: state.NodeSucceeded},
			Entry: &state.Entry{Type: state.EntrySucceeded, NodeID: nid, State: state.NodeSucceeded, Message: st.Path()}})
	}
	return changes
}

// TestBigApplySplit: one Apply of more changes than one level of a
// transaction holds (etcd's 128 operations) is one transaction, its
// writes nested (the real server takes it); with lower limits it is
// written in several, in order, within the limits.
func TestBigApplySplit(t *testing.T) {
	const n = 300
	for _, tt := range []struct {
		maxOps, maxBytes    int
		minCommits, maxCmts uint64
	}{
		{0, 0, 1, 1}, // 300 node records, one journal key, the head: 4,096 fit
		// 8 a level, 8 KiB a transaction: the 600 entries alone (about
		// 300 bytes each) take at least 18.
		{8, 8 << 10, n / 16, n},
	} {
		t.Run(fmt.Sprintf("max-ops-%d", tt.maxOps), func(t *testing.T) {
			st, _ := mustEtcd(t, nil, etcdstate.Options{MaxTxnOps: tt.maxOps, MaxTxnBytes: tt.maxBytes})
			createRun(t, st, "r1", n)
			before := st.Stats().Commits
			bigApply(t, st, "r1", n)
			if commits := st.Stats().Commits - before; commits < tt.minCommits || commits > tt.maxCmts {
				t.Errorf("%d commits for %d changes, want %d to %d", commits, 2*n, tt.minCommits, tt.maxCmts)
			}
			nodes, _ := st.Nodes("r1")
			for _, nd := range nodes[:n] {
				if nd.State != state.NodeSucceeded {
					t.Fatalf("node %s is %s", nd.ID, nd.State)
				}
			}
			j := journalOf(t, st, "r1")
			for i, e := range j {
				if e.Seq != uint64(i+1) || (i > 0 && e.Prev != j[i-1].Hash) {
					t.Fatalf("entry %d: seq %d prev %.8s", i+1, e.Seq, e.Prev)
				}
			}
			if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != 2*n+1 {
				t.Errorf("Verify = %+v, %v", rep, err)
			}
		})
	}
}

// TestTwoWritersNeverFork: two stores (two machines) append to the same
// run at once; the chain stays one, every entry is there once.
func TestTwoWritersNeverFork(t *testing.T) {
	a, u := mustEtcd(t, nil, etcdstate.Options{})
	b, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 40
	createRun(t, a, "r1", 2*n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < 2*n; i++ {
		st := state.Backend(a)
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nid := fmt.Sprintf("n%03d", i)
			errs <- st.Apply(context.Background(), state.Change{RunID: "r1",
				Node:  &state.NodeRecord{ID: nid, State: state.NodeRunning},
				Entry: &state.Entry{Type: state.EntryStarted, NodeID: nid, State: state.NodeRunning, Message: st.Path()}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	nodes := map[string]int{}
	for _, e := range journalOf(t, a, "r1")[1:] {
		nodes[e.NodeID]++
	}
	if len(nodes) != 2*n {
		t.Errorf("%d nodes journaled, want %d", len(nodes), 2*n)
	}
	for id, c := range nodes {
		if c != 1 {
			t.Errorf("node %s journaled %d times", id, c)
		}
	}
	if rep, err := b.Verify("r1"); err != nil || !rep.OK || rep.Entries != 2*n+1 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

// TestBigSnapshotChunked: a 5 MB snapshot is stored in chunks of at most
// ChunkSize, read back whole, and replaced without leaving the old chunks.
func TestBigSnapshotChunked(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	big := make([]byte, 5<<20)
	_, _ = rand.Read(big)
	ctx := context.Background()
	if err := st.CreateRun(ctx, state.Run{ID: "r1"}, big, []state.NodeRecord{{ID: "a", State: state.NodePending}}); err != nil {
		t.Fatal(err)
	}
	chunks := func() int {
		n := 0
		for k, v := range keysUnder(t, cli, u) {
			if strings.Contains(k, "/runs/snap/") {
				n++
				if len(v) > etcdstate.ChunkSize {
					t.Errorf("chunk %s: %d bytes", k, len(v))
				}
			}
		}
		return n
	}
	if n := chunks(); n != 20 {
		t.Errorf("%d chunks of a 5 MiB snapshot, want 20", n)
	}
	got, err := st.Snapshot("r1")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Snapshot: %d bytes, %v", len(got), err)
	}
	big2 := append(big[:3<<20:3<<20], []byte("tail")...)
	if err := st.Apply(ctx, state.Change{RunID: "r1", Snapshot: big2}); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 13 {
		t.Errorf("%d chunks after the replacement by 3 MiB, want 13 (the old ones deleted)", n)
	}
	if got, err := st.Snapshot("r1"); err != nil || !bytes.Equal(got, big2) {
		t.Fatalf("Snapshot after replacement: %d bytes, %v", len(got), err)
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

// TestRunIDWithSlashRefused: a run id cannot hold the key separator.
func TestRunIDWithSlashRefused(t *testing.T) {
	st, _ := mustEtcd(t, nil, etcdstate.Options{})
	err := st.CreateRun(context.Background(), state.Run{ID: "a/b"}, snap, nil)
	if !errors.Is(err, state.ErrInvalidChange) {
		t.Fatalf("CreateRun(a/b) = %v, want ErrInvalidChange", err)
	}
}
