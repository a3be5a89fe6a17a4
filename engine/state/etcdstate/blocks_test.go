package etcdstate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/zblob"
)

// journalKeys returns the journal keys of run r1 under u's prefix.
func journalKeys(kv map[string][]byte) []string {
	var out []string
	for k := range kv {
		if strings.Contains(k, "/runs/journal/r1/") {
			out = append(out, k)
		}
	}
	return out
}

// TestJournalBlocks: the entries one transaction appends share one key
// (named by the last of them), and every reader finds each entry where it
// was: Journal from any point, Verify, a copy to a file and back.
func TestJournalBlocks(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	const n = 20
	createRun(t, st, "r1", n)
	bigApply(t, st, "r1", n) // entries 2…41 in one transaction
	script(t, st, "r1", 1)   // 42, 43 and 44, one key each
	keys := journalKeys(keysUnder(t, cli, u))
	if len(keys) != 5 {
		t.Fatalf("journal keys %v, want 5 (run-created, one block, three single entries)", keys)
	}
	v, ok := keysUnder(t, cli, u)[u.Key("runs/journal/r1/0000000000000029")]
	if !ok {
		t.Fatalf("no key named by the block's last entry (41 = 0x29): %v", keys)
	}
	if len(v) == 0 || v[0] != 0x01 {
		t.Fatalf("the block of 40 entries is not stored compressed (%d bytes, %.1x…)", len(v), v[:min(len(v), 1)])
	}
	all := journalOf(t, st, "r1")
	if len(all) != 2*n+4 {
		t.Fatalf("%d entries, want %d", len(all), 2*n+4)
	}
	for after := 0; after <= len(all); after++ {
		var got []uint64
		if err := st.Journal("r1", uint64(after), func(e state.Entry) error { got = append(got, e.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(all)-after || (len(got) > 0 && got[0] != uint64(after+1)) {
			t.Fatalf("Journal after %d = %v", after, got)
		}
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(all) {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}

	// To a file and back to etcd, under another prefix: the same entries,
	// byte for byte, and the chain verified on both sides.
	c, err := st.ExportRun("r1")
	if err != nil || len(c.Entries) != len(all) {
		t.Fatalf("ExportRun: %d entries, %v", len(c.Entries), err)
	}
	f := mustFile(t)
	if err := f.ImportRun(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if rep, err := f.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("Verify of the file = %+v, %v", rep, err)
	}
	back, err := f.ExportRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	st2, u2 := mustEtcd(t, nil, etcdstate.Options{})
	if err := st2.ImportRun(context.Background(), back); err != nil {
		t.Fatal(err)
	}
	if rep, err := st2.Verify("r1"); err != nil || !rep.OK || rep.Entries != len(all) {
		t.Fatalf("Verify after the round trip = %+v, %v", rep, err)
	}
	again := journalOf(t, st2, "r1")
	for i := range all {
		if again[i].Hash != all[i].Hash {
			t.Fatalf("entry %d: hash %s after the round trip, was %s", i+1, again[i].Hash, all[i].Hash)
		}
	}
	kv2 := keysUnder(t, cli, u2)
	if k := journalKeys(kv2); len(k) >= len(all) {
		t.Errorf("%d journal keys for %d copied entries: want them in blocks", len(k), len(all))
	}
	packed := 0
	for _, k := range journalKeys(kv2) {
		if v := kv2[k]; len(v) > 0 && v[0] == 0x01 {
			packed++
		}
	}
	if packed == 0 {
		t.Errorf("no copied block is stored compressed")
	}
}

// TestJournalBlockTampering: an entry changed or dropped inside a block,
// or a block cut short, is caught as a damaged chain, and read back as a
// *state.CorruptError naming the key, never a panic.
func TestJournalBlockTampering(t *testing.T) {
	cli := rawClient(t)
	block := "runs/journal/r1/0000000000000015" // entries 2…21
	tests := []struct {
		name   string
		tamper func(v []byte) []byte
	}{
		{"entry byte changed", func(v []byte) []byte {
			return bytes.Replace(v, []byte(`"node":"n004"`), []byte(`"node":"n005"`), 1)
		}},
		{"block cut short", func(v []byte) []byte {
			// Inside an entry: a cut at an entry's end (its length depends
			// on the test's prefix) leaves a shorter block that adds up.
			return v[:bytes.Index(v, []byte(`"node":"n005"`))+5]
		}},
		{"one entry dropped", func(v []byte) []byte {
			// Rebuild the block without its third entry: the lengths add up.
			var entries [][]byte
			rest := v[1:]
			for len(rest) > 0 {
				n, k := int(rest[0]), 1
				if rest[0] >= 0x80 {
					n, k = int(rest[0]&0x7f)|int(rest[1])<<7, 2
				}
				entries = append(entries, rest[k:k+n])
				rest = rest[k+n:]
			}
			out := []byte{0}
			for i, e := range entries {
				if i != 2 {
					out = appendUvarint(out, len(e))
					out = append(out, e...)
				}
			}
			return out
		}},
	}
	for _, tt := range tests {
		// The block tampered with is written back plain (as earlier
		// versions stored blocks) or compressed, as it was.
		for _, packed := range []bool{false, true} {
			form := map[bool]string{false: "plain", true: "compressed"}[packed]
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				st, u := mustEtcd(t, nil, etcdstate.Options{})
				createRun(t, st, "r1", 10)
				bigApply(t, st, "r1", 10)
				kv := keysUnder(t, cli, u)
				v := plainBlock(t, kv[u.Key(block)])
				if len(v) == 0 || v[0] != 0 {
					t.Fatalf("no block at %s: %v", block, journalKeys(kv))
				}
				v = tt.tamper(v)
				if packed {
					v = packBlock(t, v)
				}
				put(t, cli, u.Key(block), v)
				rep, err := st.Verify("r1")
				if err != nil || rep.OK || rep.Level != "chain" {
					t.Errorf("Verify = %+v, %v; want the chain broken", rep, err)
				}
				err = st.Journal("r1", 0, func(state.Entry) error { return nil })
				var ce *state.CorruptError
				if tt.name != "one entry dropped" && (!errors.As(err, &ce) || !strings.Contains(err.Error(), block)) {
					t.Errorf("Journal = %v, want *state.CorruptError naming %s", err, block)
				}
			})
		}
	}
}

// plainBlock returns a journal value as appendBlock writes it: v itself,
// or what a compressed v (0x01, then a zstd frame) holds.
func plainBlock(t *testing.T, v []byte) []byte {
	t.Helper()
	if len(v) == 0 || v[0] != 0x01 {
		return v
	}
	plain, err := zblob.Unpack(v[1:], 16<<20)
	if err != nil {
		t.Fatalf("compressed journal value: %v", err)
	}
	return plain
}

// packBlock returns a plain journal value compressed, as the store writes
// it.
func packBlock(t *testing.T, plain []byte) []byte {
	t.Helper()
	z, ok := zblob.Pack([]byte{0x01}, plain)
	if !ok {
		t.Fatalf("%d bytes do not compress", len(plain))
	}
	return z
}

func appendUvarint(b []byte, n int) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// TestTwoWritersBigBatches: two stores append big batches (nested
// transactions, blocks of entries) to the same run at once; the chain
// stays one and every entry is there once.
func TestTwoWritersBigBatches(t *testing.T) {
	a, u := mustEtcd(t, nil, etcdstate.Options{})
	b, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const writers, batches, per = 2, 6, 150
	createRun(t, a, "r1", writers*batches*per)
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w, st := range []*etcdstate.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				var changes []state.Change
				for j := 0; j < per; j++ {
					nid := fmt.Sprintf("n%03d", (w*batches+i)*per+j)
					changes = append(changes, state.Change{RunID: "r1",
						Node:  &state.NodeRecord{ID: nid, State: state.NodeRunning},
						Entry: &state.Entry{Type: state.EntryStarted, NodeID: nid, State: state.NodeRunning}})
				}
				errs <- st.Apply(context.Background(), changes...)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	for _, e := range journalOf(t, a, "r1")[1:] {
		seen[e.NodeID]++
	}
	if len(seen) != writers*batches*per {
		t.Errorf("%d nodes journaled, want %d", len(seen), writers*batches*per)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("node %s journaled %d times", id, c)
		}
	}
	if rep, err := b.Verify("r1"); err != nil || !rep.OK || rep.Entries != writers*batches*per+1 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}
