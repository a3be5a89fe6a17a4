package etcdstate

import (
	"bytes"
	"testing"
)

// FuzzNodeBlock: whatever a node block key holds, splitNodeBlock gives
// records or errBadNodeBlock, never a panic; what appendNodeRecord writes
// reads back whole.
func FuzzNodeBlock(f *testing.F) {
	good := appendNodeRecord(appendNodeRecord([]byte{nodeBlockMagic}, "n001", []byte{1, 2, 3}), "n002", nil)
	f.Add(good, "web", []byte("record"))
	f.Add(good[:len(good)-2], "", []byte{})
	f.Add([]byte{nodeBlockMagic, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "x", []byte{0})
	f.Add([]byte{0x00}, "a/b", []byte("{}"))
	f.Fuzz(func(t *testing.T, v []byte, id string, rec []byte) {
		var ids []string
		if err := splitNodeBlock(v, func(id string, _ []byte) { ids = append(ids, id) }); err == nil {
			for _, id := range ids {
				if id == "" {
					t.Fatalf("an empty id from %x", v)
				}
			}
		} else if err != errBadNodeBlock {
			t.Fatalf("error %v", err)
		}
		if id == "" {
			return
		}
		b := appendNodeRecord(appendNodeRecord([]byte{nodeBlockMagic}, id, rec), "last", []byte{7})
		var got [][]byte
		var gotIDs []string
		if err := splitNodeBlock(b, func(id string, stored []byte) {
			gotIDs, got = append(gotIDs, id), append(got, stored)
		}); err != nil || len(got) != 2 || gotIDs[0] != id || !bytes.Equal(got[0], rec) || gotIDs[1] != "last" {
			t.Fatalf("read back %q %x, %v", gotIDs, got, err)
		}
	})
}
