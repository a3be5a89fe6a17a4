package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestVerifyFlippedByte damages one journal entry in the raw file, found by
// searching the file bytes for a string it holds, and expects Verify to
// name that entry.
func TestVerifyFlippedByte(t *testing.T) {
	const recNeedle = `"msg":"needle-0041","record":"`
	prevAt := len(recNeedle) + 32 + len(`","prev":"`)
	tests := []struct {
		name   string
		needle string // a string unique to entry 43 (node n0041)
		at     int    // offset of the flipped byte from the needle's start
		flip   byte
	}{
		{"message", "needle-0041", 3, 0x01},
		{"message case", "needle-0041", 0, 0x20},
		{"json syntax", `,"msg":"needle-0041`, 0, 0x01},
		{"seq", `{"seq":43,`, 7, 0x01},
		{"type", `"node-succeeded","node":"n0041"`, 3, 0x01},
		{"node id", `"node-succeeded","node":"n0041"`, 28, 0x01},
		{"record digest", recNeedle, len(recNeedle), 0x01},
		{"prev", recNeedle, prevAt, 0x01},
		{"own hash", recNeedle, prevAt + 64 + len(`","hash":"`), 0x01},
		{"own hash end", recNeedle, prevAt + 64 + len(`","hash":"`) + 63, 0x01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, b := mustStateFile(t)
			i := bytes.Index(b, []byte(tt.needle))
			if i < 0 || bytes.Count(b, []byte(tt.needle)) != 1 {
				t.Fatalf("needle %q found %d times, want once", tt.needle, bytes.Count(b, []byte(tt.needle)))
			}
			b[i+tt.at] ^= tt.flip
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			rep := verifyFile(t, path)
			if rep.OK || rep.FirstBad != 43 {
				t.Errorf("Verify = %+v, want entry 43 bad", rep)
			}
			t.Logf("%+v", rep)
		})
	}
}

func TestVerifyMissingEntries(t *testing.T) {
	tests := []struct {
		name    string
		seq     uint64
		wantBad uint64
	}{
		{"last entry deleted", 101, 101},
		{"middle entry deleted", 50, 50},
		{"first entry deleted", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := mustStateFile(t)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketJournal).Bucket([]byte("r1")).Delete(seqKey(tt.seq))
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rep, err := s.Verify("r1")
			if err != nil || rep.OK || rep.FirstBad != tt.wantBad {
				t.Errorf("Verify = %+v, %v; want entry %d bad", rep, err, tt.wantBad)
			}
			// Journal reports nothing wrong with the entries it can read; the
			// chain is Verify's job. Apply still chains onto the head.
			if err := s.Apply(context.Background(), Change{RunID: "r1", Entry: &Entry{Type: "x"}}); err != nil {
				t.Errorf("Apply after damage: %v", err)
			}
		})
	}
}

// TestVerifyResealedEntry rewrites an entry with a valid hash of its own
// (as someone who knows the format would): the next entry's Prev no longer
// matches.
func TestVerifyResealedEntry(t *testing.T) {
	path, _ := mustStateFile(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		jb := tx.Bucket(bucketJournal).Bucket([]byte("r1"))
		e, err := openEntry(jb.Get(seqKey(43)))
		if err != nil {
			return err
		}
		e.Message = "nothing happened here"
		stored, _, err := sealEntry(&e)
		if err != nil {
			return err
		}
		return jb.Put(seqKey(43), stored)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.Verify("r1")
	if err != nil || rep.OK || rep.FirstBad != 44 {
		t.Errorf("Verify = %+v, %v; want entry 44 bad (its Prev)", rep, err)
	}
}

// TestDamagedHead: a journal head that lags behind the journal must not
// make Apply overwrite entries.
func TestDamagedHead(t *testing.T) {
	path, _ := mustStateFile(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHeads).Delete([]byte("r1")) })
	db.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Apply(context.Background(), Change{RunID: "r1", Node: &NodeRecord{ID: "n0199", State: NodeFailed}, Entry: &Entry{Type: "x"}})
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Apply with a lost head = %v, want *CorruptError", err)
	}
	var first Entry
	_ = s.Journal("r1", 0, func(e Entry) error {
		if e.Seq == 1 {
			first = e
		}
		return nil
	})
	if first.Type != "run-created" {
		t.Errorf("entry 1 = %+v, want the run-created entry untouched", first)
	}
	if n, _ := s.Node("r1", "n0199"); n.State != NodePending {
		t.Errorf("node of the refused change = %+v, want it pending", n)
	}
	if rep, _ := s.Verify("r1"); rep.OK {
		t.Errorf("Verify = %+v, want the missing head reported", rep)
	}
}
