package etcdstate_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// snapMagic is what starts a compressed snapshot (snapzip.go).
const snapMagic = "\x00RSZ\x01"

// snapKeys returns the chunks of run id's snapshot named hash, in order.
func snapKeys(t *testing.T, cli *clientv3.Client, u etcdconn.URL, id, hash string) [][]byte {
	t.Helper()
	resp, err := cli.Get(context.Background(), u.Key("runs/snap/"+id+"/"+hash+"/"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, kv := range resp.Kvs {
		out = append(out, kv.Value)
	}
	return out
}

// putSnap replaces run id's snapshot chunks by data, cut in chunks of
// ChunkSize, as an earlier version (plain) or a damaged store would hold
// them.
func putSnap(t *testing.T, cli *clientv3.Client, u etcdconn.URL, id, hash string, data []byte) {
	t.Helper()
	prefix := u.Key("runs/snap/" + id + "/" + hash + "/")
	if _, err := cli.Delete(context.Background(), prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i*etcdstate.ChunkSize < len(data); i++ {
		put(t, cli, prefix+string([]byte{'0', '0', '0', byte('0' + i)}), data[i*etcdstate.ChunkSize:min((i+1)*etcdstate.ChunkSize, len(data))])
	}
}

// mustSnapRun creates run r1 with snapshot snap and two pending nodes,
// and returns its graph hash.
func mustSnapRun(t *testing.T, st state.Backend, snap []byte) string {
	t.Helper()
	nodes := []state.NodeRecord{{ID: "n0", State: state.NodePending}, {ID: "n1", State: state.NodePending}}
	if err := st.CreateRun(context.Background(), state.Run{ID: "r1", GraphName: "noop10k", Created: t0}, snap, nodes); err != nil {
		t.Fatal(err)
	}
	run, err := st.Run("r1")
	if err != nil {
		t.Fatal(err)
	}
	if run.GraphHash != state.GraphHash(snap) {
		t.Fatalf("graph hash %s, want the SHA-256 of the uncompressed snapshot %s", run.GraphHash, state.GraphHash(snap))
	}
	return run.GraphHash
}

// wantSnapshot checks that st gives snap back for r1 and verifies it.
func wantSnapshot(t *testing.T, st state.Backend, snap []byte) {
	t.Helper()
	got, err := st.Snapshot("r1")
	if err != nil || !bytes.Equal(got, snap) {
		t.Fatalf("%s: Snapshot = %d bytes, %v; want the %d original bytes", st.Path(), len(got), err, len(snap))
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("%s: Verify = %+v, %v", st.Path(), rep, err)
	}
}

// TestSnapshotStoredCompressed: the 815 KB YAML snapshot of a 10,000-node
// graph is stored compressed in one chunk instead of four, read back as
// its original bytes and verified; a replacement is compressed too and the
// old chunks go; a tiny snapshot stays plain.
func TestSnapshotStoredCompressed(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	snap := zonedGraph(10000)
	hash := mustSnapRun(t, st, snap)
	chunks := snapKeys(t, cli, u, "r1", hash)
	stored := len(bytes.Join(chunks, nil))
	if len(chunks) != 1 || stored > len(snap)/4 || !bytes.HasPrefix(chunks[0], []byte(snapMagic)) {
		t.Fatalf("snapshot of %d bytes stored as %d chunks of %d bytes, want one compressed chunk under a quarter", len(snap), len(chunks), stored)
	}
	t.Logf("snapshot of %d bytes stored in %d bytes", len(snap), stored)
	wantSnapshot(t, st, snap)

	snap2 := zonedGraph(4000)
	if err := st.Apply(context.Background(), state.Change{RunID: "r1", Snapshot: snap2}); err != nil {
		t.Fatal(err)
	}
	hash2 := state.GraphHash(snap2)
	if old := snapKeys(t, cli, u, "r1", hash); len(old) != 0 {
		t.Errorf("%d chunks of the replaced snapshot left", len(old))
	}
	if c := snapKeys(t, cli, u, "r1", hash2); len(c) != 1 || !bytes.HasPrefix(c[0], []byte(snapMagic)) || len(c[0]) > len(snap2)/4 {
		t.Errorf("replacement snapshot stored as %d chunks, want one compressed", len(c))
	}
	wantSnapshot(t, st, snap2)

	small := []byte("version: 1\nname: tiny\nnodes: []\n")
	st3, u3 := mustEtcd(t, nil, etcdstate.Options{})
	hs := mustSnapRun(t, st3, small)
	if c := snapKeys(t, cli, u3, "r1", hs); len(c) != 1 || !bytes.Equal(c[0], small) {
		t.Errorf("tiny snapshot stored as %q, want it plain", c)
	}
	wantSnapshot(t, st3, small)
}

// TestPlainSnapshotStillReads: a snapshot stored plain, as earlier
// versions wrote it (in chunks of ChunkSize), reads back and verifies, as
// does a plain one that starts with the magic (bytes that are no graph
// file). Both pass without the compression too: they guard the old layout.
func TestPlainSnapshotStillReads(t *testing.T) {
	cli := rawClient(t)
	for name, snap := range map[string][]byte{
		"yaml":  zonedGraph(10000),
		"magic": append([]byte(snapMagic), zonedGraph(300)...),
	} {
		t.Run(name, func(t *testing.T) {
			st, u := mustEtcd(t, nil, etcdstate.Options{})
			hash := mustSnapRun(t, st, snap)
			putSnap(t, cli, u, "r1", hash, snap)
			if c := snapKeys(t, cli, u, "r1", hash); len(bytes.Join(c, nil)) != len(snap) {
				t.Fatalf("plain chunks hold %d bytes", len(bytes.Join(c, nil)))
			}
			wantSnapshot(t, st, snap)
			c, err := st.ExportRun("r1")
			if err != nil || !bytes.Equal(c.Snapshot, snap) {
				t.Fatalf("ExportRun: %d bytes, %v", len(c.Snapshot), err)
			}
		})
	}
}

// TestCopiedSnapshotKeepsBytes: `state copy` from a file to etcd and back
// keeps the snapshot byte for byte; it is compressed in etcd and plain in
// the file; log --verify is OK on each side.
func TestCopiedSnapshotKeepsBytes(t *testing.T) {
	cli := rawClient(t)
	snap := zonedGraph(10000)
	f := mustFile(t)
	mustSnapRun(t, f, snap)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	copyRun(t, f, st, "r1")
	chunks := snapKeys(t, cli, u, "r1", state.GraphHash(snap))
	if len(chunks) != 1 || !bytes.HasPrefix(chunks[0], []byte(snapMagic)) {
		t.Errorf("copied snapshot stored as %d chunks, want one compressed", len(chunks))
	}
	wantSnapshot(t, st, snap)
	f2 := mustFile(t)
	if back := copyRun(t, st, f2, "r1"); !bytes.Equal(back.Snapshot, snap) {
		t.Fatalf("ExportRun from etcd: %d bytes, want the %d original ones", len(back.Snapshot), len(snap))
	}
	wantSnapshot(t, f2, snap)
	r1, _ := f.Run("r1")
	r2, _ := f2.Run("r1")
	if r1.GraphHash != r2.GraphHash {
		t.Errorf("graph hash %s after the round trip, was %s", r2.GraphHash, r1.GraphHash)
	}
}

// deflate compresses data as a snapshot's stream.
func deflate(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// packed is a compressed snapshot: the magic, length n, stream.
func packed(n uint64, stream []byte) []byte {
	return append(binary.BigEndian.AppendUint64([]byte(snapMagic), n), stream...)
}

// TestDamagedSnapshotIsCorrupt: a compressed snapshot that is damaged,
// cut short, or that decompresses (or says it does) past its length or
// the graphs' 64 MiB limit, a zip bomb, gives *state.CorruptError naming
// its first chunk, from Snapshot, ExportRun and Verify: never a panic, and
// never more allocated than the limit.
func TestDamagedSnapshotIsCorrupt(t *testing.T) {
	cli := rawClient(t)
	snap := zonedGraph(10000)
	good := packed(uint64(len(snap)), deflate(t, snap))
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x55
	bomb := deflate(t, make([]byte, 80<<20)) // 80 MiB of zeros, about 80 KB
	tests := map[string][]byte{
		"bit flipped":          flipped,
		"cut short":            good[:len(good)*3/4],
		"header only":          good[:len(snapMagic)+8],
		"header cut":           good[:len(snapMagic)+3],
		"length over":          packed(uint64(len(snap))+1, deflate(t, snap)),
		"length under":         packed(uint64(len(snap))-1, deflate(t, snap)),
		"not deflate":          packed(uint64(len(snap)), snap[:len(snap)/8]),
		"bomb with its length": packed(80<<20, bomb),
		"bomb under 4 MiB":     packed(4<<20, bomb),
		"header over ratio":    packed(10<<20, deflate(t, snap)),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			st, u := mustEtcd(t, nil, etcdstate.Options{})
			hash := mustSnapRun(t, st, snap)
			putSnap(t, cli, u, "r1", hash, data)
			first := "runs/snap/r1/" + hash + "/0000"
			wantCorrupt := func(what string, err error) {
				t.Helper()
				var ce *state.CorruptError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), first) {
					t.Errorf("%s: %v, want *state.CorruptError naming %s", what, err, first)
				}
			}
			_, err := st.Snapshot("r1")
			wantCorrupt("Snapshot", err)
			_, err = st.ExportRun("r1")
			wantCorrupt("ExportRun", err)
			_, err = st.Verify("r1")
			wantCorrupt("Verify", err)
		})
	}
}
