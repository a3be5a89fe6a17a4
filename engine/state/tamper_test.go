package state

import (
	"context"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// tamper edits the closed state file at path with bbolt directly, as
// someone holding the file (and knowing its format) can.
func tamper(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// rechain rewrites run r1's journal from entry from on: edit changes each
// decoded entry (return false to drop it and all after), then every hash,
// link and the head are recomputed, as an attacker who knows the format
// would.
func rechain(tx *bolt.Tx, from uint64, edit func(*Entry) bool) error {
	jb := tx.Bucket(bucketJournal).Bucket([]byte("r1"))
	var prev string
	var last uint64
	drop := false
	var keys [][]byte
	_ = jb.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte{}, k...)); return nil })
	for _, k := range keys {
		e, err := openEntry(jb.Get(k))
		if err != nil {
			return err
		}
		if e.Seq < from {
			prev, last = e.Hash, e.Seq
			continue
		}
		if drop || !edit(&e) {
			drop = true
			if err := jb.Delete(k); err != nil {
				return err
			}
			continue
		}
		e.Prev = prev
		stored, hash, err := sealEntry(&e)
		if err != nil {
			return err
		}
		if err := jb.Put(k, stored); err != nil {
			return err
		}
		prev, last = hash, e.Seq
	}
	return tx.Bucket(bucketHeads).Put([]byte("r1"), encodeHead(last, prev))
}

func setNode(tx *bolt.Tx, id string, st NodeState) []byte {
	nb := tx.Bucket(bucketNodes).Bucket([]byte("r1"))
	n, _ := unmarshalNode(nb.Get([]byte(id)))
	n.State = st
	b := marshalNode(&n)
	_ = nb.Put([]byte(id), b)
	return b
}

// TestVerifyCatchesTampering: each edit of the file is caught by the level
// that can see it; the one only an anchor outside the file can see (the
// whole chain recomputed) is in package anchor's tests.
func TestVerifyCatchesTampering(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(tx *bolt.Tx) error
		wantLevel string
	}{
		{"node record failed to succeeded", func(tx *bolt.Tx) error {
			setNode(tx, "n0010", NodeSucceeded)
			return nil
		}, "records"},
		{"pending node record set succeeded (never journaled)", func(tx *bolt.Tx) error {
			setNode(tx, "n0150", NodeSucceeded)
			return nil
		}, "records"},
		{"node record removed", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketNodes).Bucket([]byte("r1")).Delete([]byte("n0020"))
		}, "records"},
		{"last entry dropped, head fixed (a node's last word)", func(tx *bolt.Tx) error {
			return rechain(tx, 101, func(*Entry) bool { return false })
		}, "records"},
		{"entry edited failed to succeeded, chain and head recomputed, record left", func(tx *bolt.Tx) error {
			return rechain(tx, 12, func(e *Entry) bool {
				if e.NodeID == "n0010" {
					e.State = NodeSucceeded
				}
				return true
			})
		}, "records"},
		{"snapshot replaced", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketSnapshots).Put([]byte("r1"), []byte("version: 1\nnodes: [{id: x, with: {restore: [sh, -c, evil]}}]\n"))
		}, "snapshot"},
		{"snapshot replaced and run record's hash fixed", func(tx *bolt.Tx) error {
			snap := []byte("version: 1\n# injected\n")
			_ = tx.Bucket(bucketSnapshots).Put([]byte("r1"), snap)
			w := newTxWriter(tx, "")
			_, err := w.putRun("r1", nil)
			return err
		}, "snapshot"},
		{"a middle entry rewritten alone", func(tx *bolt.Tx) error {
			jb := tx.Bucket(bucketJournal).Bucket([]byte("r1"))
			e, _ := openEntry(jb.Get(seqKey(30)))
			e.Message = "nothing happened"
			b, _, _ := sealEntry(&e)
			return jb.Put(seqKey(30), b)
		}, "chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := mustTamperFile(t)
			tamper(t, path, tt.edit)
			rep := verifyFile(t, path)
			if rep.OK || rep.Level != tt.wantLevel {
				t.Fatalf("Verify = %+v, want a %s problem", rep, tt.wantLevel)
			}
			t.Logf("%s: %s", rep.Level, rep.Problem)
		})
	}
}

// mustTamperFile is mustStateFile with node n0010 failed and one
// run-level entry at the end.
func mustTamperFile(t *testing.T) string {
	t.Helper()
	path, _ := mustStateFile(t)
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Entries 102-103: n0010 fails (after succeeding in mustStateFile's
	// entry 12), then the run parks.
	if err := s.Apply(ctx, Change{RunID: "r1", Node: &NodeRecord{ID: "n0010", State: NodeFailed, Attempts: 2},
		Entry: &Entry{Type: EntryFailed, NodeID: "n0010", State: NodeFailed}}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify("r1")
	if err != nil || !rep.OK {
		t.Fatalf("Verify before tampering = %+v, %v", rep, err)
	}
	return path
}

// TestSnapshotChecked: a snapshot replaced outside reprise is refused by
// Snapshot, which resume and retry read the graph from.
func TestSnapshotChecked(t *testing.T) {
	path := mustTamperFile(t)
	tamper(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).Put([]byte("r1"), []byte("version: 1\n# injected\n"))
	})
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Snapshot("r1"); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "r1") {
		t.Errorf("Snapshot of a replaced snapshot = %v, want ErrTampered", err)
	}
}
