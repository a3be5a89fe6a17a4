package etcdstate_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/zblob"
)

// plainOf returns the value appendBlock writes for sealed entries: one
// entry as it is, more as 0x00 and each one's uvarint length and bytes.
func plainOf(entries []state.StoredEntry) []byte {
	if len(entries) == 1 {
		return entries[0].Stored
	}
	out := []byte{0}
	for _, e := range entries {
		out = binary.AppendUvarint(out, uint64(len(e.Stored)))
		out = append(out, e.Stored...)
	}
	return out
}

// TestJournalCompressedBlock: the entries of a big transaction are stored
// in one key, 0x01 and the zstd frame of their plain block, at most the
// plain block's size; the single entries of small ones stay plain; every
// reader gives the entries the chain was sealed over.
func TestJournalCompressedBlock(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	const n = 100
	createRun(t, st, "r1", n)
	bigApply(t, st, "r1", n) // entries 2…201 in one transaction
	script(t, st, "r1", 1)   // 202, 203, 204: one key each
	c, err := st.ExportRun("r1")
	if err != nil || len(c.Entries) != 2*n+4 {
		t.Fatalf("ExportRun: %d entries, %v", len(c.Entries), err)
	}
	kv := keysUnder(t, cli, u)
	v := kv[u.Key(fmt.Sprintf("runs/journal/r1/%016x", 2*n+1))]
	plain := plainOf(c.Entries[1 : 2*n+1])
	if len(v) == 0 || v[0] != 0x01 || len(v) >= len(plain) {
		t.Fatalf("block of %d entries: %d bytes stored (%.1x…), %d plain; want it compressed", 2*n, len(v), v[:min(len(v), 1)], len(plain))
	}
	got, err := zblob.Unpack(v[1:], 16<<20)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("the compressed block does not hold the plain block (%d bytes of %d, %v)", len(got), len(plain), err)
	}
	t.Logf("a block of %d entries: %d bytes plain, %d stored", 2*n, len(plain), len(v))
	for _, e := range c.Entries[2*n+1:] {
		// A small entry alone in its key stays plain; a big one (the run
		// record's copy in run-parked) is compressed when that saves.
		v := kv[u.Key(fmt.Sprintf("runs/journal/r1/%016x", e.Seq))]
		if len(e.Stored) < zblob.MinSize && !bytes.Equal(v, e.Stored) {
			t.Errorf("entry %d: %q stored, want the plain entry", e.Seq, v)
		}
		if len(v) > len(e.Stored) || !bytes.Equal(plainBlock(t, v), e.Stored) {
			t.Errorf("entry %d: %d bytes stored for %d", e.Seq, len(v), len(e.Stored))
		}
	}
	all := journalOf(t, st, "r1")
	for i, e := range all {
		if e.Seq != uint64(i+1) || e.Hash == "" {
			t.Fatalf("entry %d: %+v", i+1, e)
		}
	}
	for _, after := range []uint64{0, 1, 2, 57, 200, 201, 202, 204} {
		var got []uint64
		if err := st.Journal("r1", after, func(e state.Entry) error { got = append(got, e.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(all)-int(after) || (len(got) > 0 && got[0] != after+1) {
			t.Fatalf("Journal after %d: %d entries from %v", after, len(got), got[:min(len(got), 1)])
		}
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(all) {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// A second store reads the head the compressed block left and
	// appends after it, on the same chain.
	b, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bigApply(t, b, "r1", 3)
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(all)+6 {
		t.Fatalf("Verify after another writer = %+v, %v", rep, err)
	}
}

// TestJournalLandedCompressed: after a lost answer the writer recognises
// its transaction by the last entry of the key it wrote, compressed or
// plain, and a damaged compressed key is not taken for it.
func TestJournalLandedCompressed(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 20)
	bigApply(t, st, "r1", 20) // 2…41, one compressed block
	seq, hash, err := st.Head("r1")
	if err != nil || seq != 41 {
		t.Fatalf("Head = %d, %v", seq, err)
	}
	key := u.Key("runs/journal/r1/0000000000000029")
	v := keysUnder(t, cli, u)[key]
	if len(v) == 0 || v[0] != 0x01 {
		t.Fatalf("block not compressed: %d bytes", len(v))
	}
	landed := func(what string, want bool) {
		t.Helper()
		if ok, err := st.Landed("r1", seq, hash); err != nil || ok != want {
			t.Errorf("%s: landed = %v, %v; want %v", what, ok, err, want)
		}
	}
	landed("compressed", true)
	if ok, err := st.Landed("r1", seq, strings.Repeat("0", len(hash))); err != nil || ok {
		t.Errorf("another hash: landed = %v, %v", ok, err)
	}
	put(t, cli, key, plainBlock(t, v))
	landed("plain", true)
	damaged := bytes.Clone(v)
	damaged[len(damaged)/2] ^= 0x5a
	put(t, cli, key, damaged)
	landed("damaged", false)
}

// TestJournalOldLayouts: a run whose journal holds what earlier versions
// wrote (one key per entry, plain blocks) beside compressed blocks reads
// and verifies the same, and takes new entries.
func TestJournalOldLayouts(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 30)
	bigApply(t, st, "r1", 10) // 2…21
	bigApply(t, st, "r1", 10) // 22…41
	bigApply(t, st, "r1", 10) // 42…61
	want := journalOf(t, st, "r1")
	c, err := st.ExportRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	kv := keysUnder(t, cli, u)
	key := func(seq int) string { return u.Key(fmt.Sprintf("runs/journal/r1/%016x", seq)) }
	for _, seq := range []int{21, 41, 61} {
		if v := kv[key(seq)]; len(v) == 0 || v[0] != 0x01 {
			t.Fatalf("block %d not compressed", seq)
		}
	}
	// 2…21 one key each, 22…41 a plain block, 42…61 as written.
	if _, err := cli.Delete(context.Background(), key(21)); err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Entries[1:21] {
		put(t, cli, key(int(e.Seq)), e.Stored)
	}
	put(t, cli, key(41), plainOf(c.Entries[21:41]))
	got := journalOf(t, st, "r1")
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Hash != want[i].Hash || got[i].Seq != want[i].Seq {
			t.Fatalf("entry %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
	for _, after := range []uint64{0, 5, 21, 30, 41, 50} {
		var seqs []uint64
		if err := st.Journal("r1", after, func(e state.Entry) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(seqs) != len(want)-int(after) || seqs[0] != after+1 {
			t.Fatalf("Journal after %d: %d entries", after, len(seqs))
		}
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(want) {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	bigApply(t, st, "r1", 5)
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(want)+10 {
		t.Fatalf("Verify after more entries = %+v, %v", rep, err)
	}
	back, err := st.ExportRun("r1")
	if err != nil || len(back.Entries) != len(want)+10 {
		t.Fatalf("ExportRun: %d entries, %v", len(back.Entries), err)
	}
	for i := range c.Entries {
		if !bytes.Equal(back.Entries[i].Stored, c.Entries[i].Stored) || back.Entries[i].Seq != c.Entries[i].Seq {
			t.Fatalf("entry %d exported differently", i+1)
		}
	}
}

// TestJournalCompressedDamage: a compressed block that is damaged, claims
// more than a block can hold or is compressed twice gives
// *state.CorruptError naming its key and a broken chain, never a panic.
func TestJournalCompressedDamage(t *testing.T) {
	cli := rawClient(t)
	const block = "runs/journal/r1/0000000000000015" // entries 2…21
	huge, ok := zblob.Pack([]byte{0x01}, make([]byte, 17<<20))
	if !ok {
		t.Fatal("17 MiB of zeros do not compress")
	}
	tests := packedDamages(0x01, huge)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, u := mustEtcd(t, nil, etcdstate.Options{})
			createRun(t, st, "r1", 10)
			bigApply(t, st, "r1", 10)
			script(t, st, "r1", 1)
			v := keysUnder(t, cli, u)[u.Key(block)]
			if len(v) == 0 || v[0] != 0x01 {
				t.Fatalf("block %s not compressed: %d bytes", block, len(v))
			}
			put(t, cli, u.Key(block), tt.tamper(v))
			var seen []uint64
			err := st.Journal("r1", 0, func(e state.Entry) error { seen = append(seen, e.Seq); return nil })
			var ce *state.CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), block) {
				t.Errorf("Journal = %v, want *state.CorruptError naming %s", err, block)
			}
			if len(seen) != 1 {
				t.Errorf("Journal gave %v before the damaged block, want [1]", seen)
			}
			t.Logf("Journal: %v", err)
			rep, err := st.Verify("r1")
			if err != nil || rep.OK || rep.Level != "chain" {
				t.Errorf("Verify = %+v, %v; want the chain broken", rep, err)
			}
			if _, err := st.ExportRun("r1"); err != nil {
				t.Logf("ExportRun: %v", err)
			}
		})
	}
}

// TestJournalCompressedCopy: a run whose journal is in compressed blocks
// copied etcd → file → etcd keeps its entries byte for byte, verifies on
// each side, and the copy's blocks are compressed too.
func TestJournalCompressedCopy(t *testing.T) {
	cli := rawClient(t)
	st, _ := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 200)
	bigApply(t, st, "r1", 200) // 400 entries, one block
	script(t, st, "r1", 2)
	f := mustFile(t)
	c := copyRun(t, st, f, "r1")
	if rep, err := f.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(c.Entries) {
		t.Fatalf("Verify of the file = %+v, %v", rep, err)
	}
	st2, u2 := mustEtcd(t, nil, etcdstate.Options{})
	back := copyRun(t, f, st2, "r1")
	if rep, err := st2.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(c.Entries) {
		t.Fatalf("Verify after the round trip = %+v, %v", rep, err)
	}
	again, err := st2.ExportRun("r1")
	if err != nil || len(again.Entries) != len(c.Entries) || len(back.Entries) != len(c.Entries) {
		t.Fatalf("ExportRun after the round trip: %d entries, %v", len(again.Entries), err)
	}
	for i := range c.Entries {
		if !bytes.Equal(again.Entries[i].Stored, c.Entries[i].Stored) {
			t.Fatalf("entry %d changed in the round trip", i+1)
		}
	}
	packed, plain := 0, 0
	for k, v := range keysUnder(t, cli, u2) {
		if strings.Contains(k, "/runs/journal/") {
			if v[0] == 0x01 {
				packed++
			} else if v[0] == 0x00 {
				plain++
			}
		}
	}
	if packed == 0 || plain != 0 {
		t.Errorf("the copy's journal: %d compressed blocks, %d plain", packed, plain)
	}
}

// packedDamage is one way to damage a compressed value (a marker byte,
// then a zstd frame).
type packedDamage struct {
	name   string
	tamper func(v []byte) []byte
}

// packedDamages are the damages every compressed value of the store must
// be refused for: marker is the first byte of its compressed form, huge a
// value of that form over its bound.
func packedDamages(marker byte, huge []byte) []packedDamage {
	return []packedDamage{
		{"byte flipped", func(v []byte) []byte {
			v = bytes.Clone(v)
			v[len(v)/2] ^= 0x5a
			return v
		}},
		{"last byte flipped", func(v []byte) []byte {
			v = bytes.Clone(v)
			v[len(v)-1] ^= 0x01
			return v
		}},
		{"frame header flipped", func(v []byte) []byte {
			v = bytes.Clone(v)
			v[2] ^= 0xff
			return v
		}},
		{"cut short", func(v []byte) []byte { return v[:len(v)*2/3] }},
		{"marker alone", func([]byte) []byte { return []byte{marker} }},
		{"over the bound", func([]byte) []byte { return huge }},
		{"compressed twice", func(v []byte) []byte {
			z, _ := zblob.Pack([]byte{marker}, bytes.Repeat(v, 2))
			return z
		}},
	}
}
