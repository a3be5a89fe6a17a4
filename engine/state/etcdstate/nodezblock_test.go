package etcdstate_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/zblob"
)

// levelChanges are the changes of a level of nodes n<from>…n<to-1>, in
// one Apply: each started, then succeeded with an output.
func levelChanges(run string, from, to int) []state.Change {
	var changes []state.Change
	for i := from; i < to; i++ {
		id := fmt.Sprintf("n%03d", i)
		changes = append(changes, nodeChange(run, id, state.NodeRunning, i, 0), nodeChange(run, id, state.NodeSucceeded, i, 0))
	}
	return changes
}

// plainNodeBlock returns a node block value as earlier versions wrote it
// (0x01 and records): v itself, or what a compressed v (0x02, then a zstd
// frame) holds.
func plainNodeBlock(t *testing.T, v []byte) []byte {
	t.Helper()
	if len(v) == 0 || v[0] != 0x02 {
		return v
	}
	plain, err := zblob.Unpack(v[1:], etcdstate.MaxNodePart)
	if err != nil {
		t.Fatalf("compressed node block: %v", err)
	}
	return plain
}

// nodeBlockIDs returns the node ids a plain node block holds, in order.
func nodeBlockIDs(t *testing.T, plain []byte) []string {
	t.Helper()
	if len(plain) == 0 || plain[0] != 0x01 {
		t.Fatalf("not a plain node block: %.1x…", plain[:min(len(plain), 1)])
	}
	var ids []string
	for v := plain[1:]; len(v) > 0; {
		var f [2][]byte
		for i := range f {
			n, k := binary.Uvarint(v)
			if k <= 0 || n > uint64(len(v)-k) {
				t.Fatalf("plain node block: bad length after %d nodes", len(ids))
			}
			f[i], v = v[k:k+int(n)], v[k+int(n):]
		}
		ids = append(ids, string(f[0]))
	}
	return ids
}

// nodeBlock returns the raw value of run r1's node block named key.
func nodeBlock(t *testing.T, cli *clientv3.Client, u etcdconn.URL, key string) []byte {
	t.Helper()
	return keysUnder(t, cli, u)[u.Key("runs/nblk/r1/"+key)]
}

// TestNodeBlockCompressed: a level's node block is stored as 0x02 and the
// zstd frame of its plain block, smaller than the plain block; a small
// one stays plain; every reader, and a writer that reads where the records
// are, gives the file's records.
func TestNodeBlockCompressed(t *testing.T) {
	cli := rawClient(t)
	st, u, ref := pairRun(t, 100)
	applyBoth(t, st, ref, levelChanges("r1", 0, 100)...)
	blocks := blockKeys(t, cli, u, "r1")
	if len(blocks) != 1 {
		t.Fatalf("blocks %v, want the level's one", blocks)
	}
	v := nodeBlock(t, cli, u, blocks[0])
	plain := plainNodeBlock(t, v)
	if v[0] != 0x02 || len(v) >= len(plain) {
		t.Fatalf("the level's block: %d bytes stored (%.1x…), %d plain; want it compressed", len(v), v[:1], len(plain))
	}
	if ids := nodeBlockIDs(t, plain); len(ids) != 100 || ids[0] != "n000" || ids[99] != "n099" {
		t.Fatalf("the compressed block holds %d nodes (%v…), want n000…n099", len(ids), ids[:min(len(ids), 3)])
	}
	t.Logf("a level of 100 nodes: node block %d bytes plain, %d stored", len(plain), len(v))
	sameRecords(t, st, ref, "r1")
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Records != 101 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}

	// One change: its block is under zblob.MinSize, plain.
	applyBoth(t, st, ref, nodeChange("r1", "n000", state.NodeFailed, 200, 0))
	blocks = blockKeys(t, cli, u, "r1")
	if len(blocks) != 2 {
		t.Fatalf("blocks %v, want the level's and n000's", blocks)
	}
	if v := nodeBlock(t, cli, u, blocks[1]); len(v) == 0 || v[0] != 0x01 || len(nodeBlockIDs(t, v)) != 1 {
		t.Fatalf("a block of one record: %q, want it plain", v)
	}

	// Another writer reads where the records are from the compressed
	// block, and deletes it once it supersedes the records it holds.
	w, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var changes []state.Change
	for i := 1; i < 100; i++ {
		changes = append(changes, nodeChange("r1", fmt.Sprintf("n%03d", i), state.NodeFailed, 300+i, 0))
	}
	applyBoth(t, w, ref, changes...)
	after := blockKeys(t, cli, u, "r1")
	if len(after) != 2 || after[0] != blocks[1] {
		t.Fatalf("blocks %v after the level's records were superseded, want n000's and the new one", after)
	}
	if v := nodeBlock(t, cli, u, after[1]); len(v) == 0 || v[0] != 0x02 {
		t.Fatalf("the second writer's block of 99 records is not compressed: %d bytes", len(v))
	}
	sameRecords(t, st, ref, "r1")
	sameRecords(t, w, ref, "r1")
}

// TestNodeBlockPlainStillReads: plain node blocks, as earlier versions
// wrote every block, read beside compressed ones, and a writer counts
// their records to delete them when superseded.
func TestNodeBlockPlainStillReads(t *testing.T) {
	cli := rawClient(t)
	st, u, ref := pairRun(t, 100)
	applyBoth(t, st, ref, levelChanges("r1", 0, 50)...)
	applyBoth(t, st, ref, levelChanges("r1", 50, 100)...)
	blocks := blockKeys(t, cli, u, "r1")
	if len(blocks) != 2 {
		t.Fatalf("blocks %v, want the two levels'", blocks)
	}
	old := nodeBlock(t, cli, u, blocks[0])
	if old[0] != 0x02 || nodeBlock(t, cli, u, blocks[1])[0] != 0x02 {
		t.Fatal("the levels' blocks are not compressed")
	}
	put(t, cli, u.Key("runs/nblk/r1/"+blocks[0]), plainNodeBlock(t, old))
	sameRecords(t, st, ref, "r1")
	ro, err := etcdstate.Open(context.Background(), u, etcdstate.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	sameRecords(t, ro, ref, "r1")
	if rep, err := ro.Verify("r1"); err != nil || !rep.OK || rep.Records != 101 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	f := mustFile(t)
	copyRun(t, ro, f, "r1")
	sameRecords(t, f, ref, "r1")

	// A writer that reads the plain block's records supersedes them all:
	// the plain block goes, the compressed one stays.
	w, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var changes []state.Change
	for i := 0; i < 50; i++ {
		changes = append(changes, nodeChange("r1", fmt.Sprintf("n%03d", i), state.NodeFailed, 300+i, 0))
	}
	applyBoth(t, w, ref, changes...)
	if after := blockKeys(t, cli, u, "r1"); len(after) != 2 || after[0] != blocks[1] {
		t.Fatalf("blocks %v, want %s and the new one: the plain block superseded", after, blocks[1])
	}
	sameRecords(t, st, ref, "r1")
}

// TestNodeBlockCompressedDamage: a compressed node block that is damaged,
// says more than a part can hold, is compressed twice or does not hold a
// block gives *state.CorruptError naming its key to every reader and to a
// writer reading where the records are, never a panic.
func TestNodeBlockCompressedDamage(t *testing.T) {
	cli := rawClient(t)
	huge, ok := zblob.Pack([]byte{0x02}, append([]byte{0x01}, make([]byte, etcdstate.MaxNodePart)...))
	if !ok {
		t.Fatal("zeros do not compress")
	}
	notBlock, _ := zblob.Pack([]byte{0x02}, bytes.Repeat([]byte("x"), 1000))
	tests := append(packedDamages(0x02, huge), packedDamage{"not a block", func([]byte) []byte { return notBlock }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, u := mustEtcd(t, nil, etcdstate.Options{})
			createRun(t, st, "r1", 100)
			if err := st.Apply(context.Background(), levelChanges("r1", 0, 100)...); err != nil {
				t.Fatal(err)
			}
			blocks := blockKeys(t, cli, u, "r1")
			if len(blocks) != 1 {
				t.Fatalf("blocks %v, want one", blocks)
			}
			key := u.Key("runs/nblk/r1/" + blocks[0])
			v := nodeBlock(t, cli, u, blocks[0])
			if len(v) == 0 || v[0] != 0x02 {
				t.Fatalf("block not compressed: %d bytes", len(v))
			}
			put(t, cli, key, tt.tamper(v))
			wantReadersCorrupt(t, st, u, key, "n050", nodeChange("r1", "n001", state.NodeFailed, 9, 0))
		})
	}
}
