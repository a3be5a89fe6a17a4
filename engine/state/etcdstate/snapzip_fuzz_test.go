package etcdstate

import (
	"bytes"
	"testing"
)

// FuzzSnapshot: whatever a snapshot's chunks hold, inflateSnap gives at
// most snapMaxSize bytes or an error, never a panic; what packSnap writes
// reads back whole.
func FuzzSnapshot(f *testing.F) {
	yaml := bytes.Repeat([]byte("  - {id: n1, kind: application, plugin: noop, zone: core}\n"), 64)
	good := packSnap(yaml)
	f.Add(good, yaml)
	f.Add(good[:len(good)/2], []byte(snapMagic))
	f.Add([]byte(snapMagic+"\xff\xff\xff\xff\xff\xff\xff\xff\x00"), []byte{})
	f.Add([]byte(snapMagic+"\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x00\xfe\xffx"), []byte("version: 1\n"))
	f.Fuzz(func(t *testing.T, stored, snap []byte) {
		if got, err := inflateSnap(stored); err == nil && len(got) > snapMaxSize {
			t.Fatalf("inflateSnap gave %d bytes", len(got))
		}
		data := packSnap(snap)
		if !bytes.HasPrefix(data, []byte(snapMagic)) {
			if !bytes.Equal(data, snap) {
				t.Fatalf("plain snapshot changed")
			}
			return
		}
		got, err := inflateSnap(data)
		if err != nil || !bytes.Equal(got, snap) {
			t.Fatalf("round trip: %d bytes of %d, %v", len(got), len(snap), err)
		}
	})
}
