package etcdstate

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/reprise-si/reprise/internal/zblob"
)

// FuzzNodeBlock: whatever a node block key holds, plain or compressed (v,
// and v taken as the frame after nodeZBlockMagic), splitNodeBlock gives
// records or errBadNodeBlock, never a panic nor more than maxNodePart
// bytes; what appendNodeRecord writes reads back whole, and so does what
// nodeBlockValue stores of it (compressed when it saves, never longer).
func FuzzNodeBlock(f *testing.F) {
	good := appendNodeRecord(appendNodeRecord([]byte{nodeBlockMagic}, "n001", []byte{1, 2, 3}), "n002", nil)
	f.Add(good, "web", []byte("record"))
	f.Add(good[:len(good)-2], "", []byte{})
	f.Add([]byte{nodeBlockMagic, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "x", []byte{0})
	f.Add([]byte{0x00}, "a/b", []byte("{}"))
	// Compressed: a level's block, the same cut, with a byte changed, a
	// frame holding what is not a plain block.
	level := []byte{nodeBlockMagic}
	for i := range 40 {
		level = appendNodeRecord(level, fmt.Sprintf("n%04d", i), []byte("\x03\x01succeeded 2026-12-02T10:00:00Z"))
	}
	z := nodeBlockValue(level)
	if z[0] != nodeZBlockMagic {
		f.Fatalf("a block of 40 alike records (%d bytes) is not compressed", len(level))
	}
	f.Add(z, "n0001", []byte("\x03\x01succeeded"))
	f.Add(z[1:], "n0001", bytes.Repeat([]byte("r"), 600))
	f.Add(z[:len(z)/2], "n", []byte{})
	flipped := bytes.Clone(z)
	flipped[len(z)/2] ^= 0x5a
	f.Add(flipped, "n", []byte{1})
	twice, _ := zblob.Pack([]byte{nodeZBlockMagic}, bytes.Repeat(z, 4))
	f.Add(twice, "n", []byte{2})
	f.Fuzz(func(t *testing.T, v []byte, id string, rec []byte) {
		for _, v := range [][]byte{v, append([]byte{nodeZBlockMagic}, v...)} {
			var ids []string
			n := 0
			if err := splitNodeBlock(v, func(id string, stored []byte) {
				ids = append(ids, id)
				n += len(id) + len(stored)
			}); err == nil {
				for _, id := range ids {
					if id == "" {
						t.Fatalf("an empty id from %x", v)
					}
				}
				if n > max(len(v), maxNodePart) {
					t.Fatalf("%d bytes of records from a value of %d", n, len(v))
				}
			} else if !errors.Is(err, errBadNodeBlock) {
				t.Fatalf("error %v", err)
			}
		}
		if id == "" {
			return
		}
		b := appendNodeRecord(appendNodeRecord([]byte{nodeBlockMagic}, id, rec), "last", []byte{7})
		// The same records again under other ids, so that the block is
		// big enough to be compressed.
		big := bytes.Clone(b)
		for i := 0; len(big) < 2*zblob.MinSize; i++ {
			big = appendNodeRecord(big, fmt.Sprintf("%s.%d", id, i), rec)
		}
		for _, b := range [][]byte{b, nodeBlockValue(b), nodeBlockValue(big)} {
			var got [][]byte
			var gotIDs []string
			if err := splitNodeBlock(b, func(id string, stored []byte) {
				gotIDs, got = append(gotIDs, id), append(got, stored)
			}); err != nil || len(got) < 2 || gotIDs[0] != id || !bytes.Equal(got[0], rec) || gotIDs[1] != "last" {
				t.Fatalf("read back %q %x, %v", gotIDs, got, err)
			}
		}
		if z := nodeBlockValue(big); len(z) > len(big) || (z[0] != nodeZBlockMagic && !bytes.Equal(z, big)) {
			t.Fatalf("stored %d bytes (%x…) for a plain block of %d", len(z), z[:1], len(big))
		}
	})
}
