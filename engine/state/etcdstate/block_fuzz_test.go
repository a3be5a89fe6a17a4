package etcdstate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/reprise-si/reprise/internal/zblob"
)

// FuzzJournalBlock: whatever a journal key holds (one entry, a plain
// block, a compressed one), splitBlock gives entries or errBadBlock, never
// a panic, and blockLen agrees with it; what journalValue writes reads
// back whole, never longer than blockSize says (the transaction's
// accounting).
func FuzzJournalBlock(f *testing.F) {
	entry := []byte(`{"seq":2,"time":"2026-11-28T20:00:01Z","type":"started","node":"n001","state":"running","attempt":1,"prev":"` +
		"9f2c4e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d" + `"}`)
	plain := appendBlock(nil, [][]byte{entry, entry, entry, entry, entry})
	packed := journalValue([][]byte{entry, entry, entry, entry, entry}, 5*len(entry))
	f.Add(packed, entry, uint8(5))
	f.Add(plain, entry, uint8(2))
	f.Add(entry, []byte("{}"), uint8(1))
	f.Add(packed[:len(packed)/2], entry[:10], uint8(40))
	f.Add(append([]byte{zblockMagic}, packed...), []byte{}, uint8(0))
	f.Add([]byte{zblockMagic, 0x28, 0xb5, 0x2f, 0xfd, 0x24, 0xff, 0xff, 0xff, 0xff, 0xff}, entry, uint8(3))
	f.Add([]byte{blockMagic, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{0}, uint8(1))
	if huge, ok := zblob.Pack([]byte{zblockMagic}, make([]byte, maxPlainBlock+1)); ok {
		f.Add(huge, []byte("x"), uint8(1))
	}
	f.Fuzz(func(t *testing.T, v, e []byte, k uint8) {
		n := 0
		err := splitBlock(v, func(stored []byte) error {
			if len(stored) > maxPlainBlock {
				t.Fatalf("an entry of %d bytes", len(stored))
			}
			n++
			return nil
		})
		if err != nil && !errors.Is(err, errBadBlock) {
			t.Fatalf("error %v", err)
		}
		if got := blockLen(v); (err == nil && got != n) || (err != nil && got != 0) {
			t.Fatalf("blockLen %d, splitBlock %d entries, %v", got, n, err)
		}
		if len(e) == 0 || k == 0 {
			return
		}
		// k copies of e, each changed in its first byte: a sealed entry
		// starts with '{', as the writer's do.
		var entries [][]byte
		size := 0
		for i := range int(k) {
			c := append([]byte{'{'}, e...)
			c[len(c)-1] ^= byte(i)
			entries = append(entries, c)
			size += len(c)
		}
		w := journalValue(entries, size)
		if len(w) > blockSize(len(entries), size) {
			t.Fatalf("%d bytes written, %d estimated", len(w), blockSize(len(entries), size))
		}
		var got [][]byte
		if err := splitBlock(w, func(stored []byte) error { got = append(got, stored); return nil }); err != nil || len(got) != len(entries) {
			t.Fatalf("read back %d entries of %d, %v", len(got), len(entries), err)
		}
		for i := range got {
			if !bytes.Equal(got[i], entries[i]) {
				t.Fatalf("entry %d read back differently", i)
			}
		}
	})
}
