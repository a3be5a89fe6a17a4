package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mustStateFile writes a closed state file with a run of 200 nodes, some
// of them finished, and returns its path and bytes.
func mustStateFile(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s, "r1", 200)
	for i := range 100 {
		id := fmt.Sprintf("n%04d", i)
		err := s.Apply(context.Background(), Change{RunID: "r1",
			Node:  &NodeRecord{ID: id, State: NodeSucceeded, Attempts: 1},
			Entry: &Entry{Type: "node-succeeded", NodeID: id, Message: fmt.Sprintf("needle-%04d", i)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

func TestCorruptFile(t *testing.T) {
	_, good := mustStateFile(t)
	pageSize := int(binary.LittleEndian.Uint32(good[16+8:]))
	// bbolt grows the file ahead of use: the pages in use end at the high
	// water mark of the newest meta page.
	used := pageSize * int(max(binary.LittleEndian.Uint64(good[16+40:]), binary.LittleEndian.Uint64(good[pageSize+16+40:])))
	flip := func(offs ...int) func([]byte) []byte {
		return func(b []byte) []byte {
			for _, o := range offs {
				b[o] ^= 0x40
			}
			return b
		}
	}
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"truncated to half its pages", func(b []byte) []byte { return b[:used/2] }},
		{"last page cut", func(b []byte) []byte { return b[:used-1] }},
		{"truncated to one page", func(b []byte) []byte { return b[:pageSize] }},
		{"truncated to 100 bytes", func(b []byte) []byte { return b[:100] }},
		{"meta 0 txid flipped", flip(16 + 48)},
		{"meta 0 magic flipped", flip(16)},
		{"meta 1 root flipped", flip(pageSize + 16 + 16)},
		{"meta 1 checksum flipped", flip(pageSize + 16 + 56)},
		{"both metas flipped", flip(16+40, pageSize+16+40)},
		{"zeroed", func(b []byte) []byte { return make([]byte, len(b)) }},
		{"random garbage", func(b []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}},
		{"text file", func([]byte) []byte { return []byte("version: 1\nnodes: []\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reprise.db")
			damaged := tt.damage(bytes.Clone(good))
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			before := sha256.Sum256(damaged)
			for _, ro := range []bool{false, true} {
				s, err := Open(path, Options{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("Open(ReadOnly=%v) succeeded on a damaged file", ro)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != path {
					t.Fatalf("Open(ReadOnly=%v) = %T %v, want *CorruptError", ro, err, err)
				}
				t.Logf("%v", err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(after) != before {
				t.Error("the damaged file was modified")
			}
		})
	}
}

func TestNotAStateFile(t *testing.T) {
	var ce *CorruptError
	// Another program's bbolt files, one without a synced freelist (as etcd
	// writes them: bbolt would write one when opening it for writing).
	for _, noFreelistSync := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: noFreelistSync})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err })
		db.Close()
		before, _ := os.ReadFile(path)
		if _, err := Open(path, Options{}); !errors.As(err, &ce) {
			t.Errorf("Open of another bbolt file (NoFreelistSync %v) = %v, want *CorruptError", noFreelistSync, err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("Open modified another bbolt file (NoFreelistSync %v)", noFreelistSync)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty, Options{ReadOnly: true}); !errors.Is(err, ErrNoRunYet) {
		t.Errorf("read-only Open of an empty file = %v, want ErrNoRunYet", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open of a missing file = %v, want ErrNotExist", err)
	}
}

func TestSchemaNewer(t *testing.T) {
	path, _ := mustStateFile(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) })
	db.Close()
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchemaVersion) {
		t.Errorf("Open of a schema 2 file = %v, want ErrSchemaVersion", err)
	}
}

// TestDamagedPages flips bytes deep in the file: whatever Open and the
// reads return, they must not crash the process.
func TestDamagedPages(t *testing.T) {
	path, good := mustStateFile(t)
	pageSize := int(binary.LittleEndian.Uint32(good[16+8:]))
	r := rand.New(rand.NewPCG(3, 4))
	rounds := 100
	if testing.Short() {
		rounds = 30
	}
	outcomes := map[string]int{}
	for range rounds {
		b := bytes.Clone(good)
		for range 1 + r.IntN(8) {
			b[2*pageSize+r.IntN(len(b)-2*pageSize)] = byte(r.Uint32())
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		outcomes[damagedRound(path)]++
	}
	t.Logf("outcomes: %v", outcomes)
}

func damagedRound(path string) string {
	s, err := Open(path, Options{})
	if err != nil {
		return fmt.Sprintf("open: %T", err)
	}
	defer s.Close()
	var errs []error
	_, err = s.Runs()
	errs = append(errs, err)
	_, err = s.Nodes("r1")
	errs = append(errs, err)
	rep, err := s.Verify("r1")
	errs = append(errs, err)
	errs = append(errs, s.Apply(context.Background(), Change{RunID: "r1",
		Node: &NodeRecord{ID: "n0150", State: NodeFailed}, Entry: &Entry{Type: "node-failed"}}))
	if err := errors.Join(errs...); err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return "read: corrupt"
		}
		return "read: other error"
	}
	if !rep.OK {
		return "verify: bad chain"
	}
	return "no damage seen"
}

// FuzzOpen opens arbitrary bytes as a state file and reads everything:
// errors are fine, a crash is not. Seeds: a real small state file, cut and
// flipped.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.CreateRun(context.Background(), Run{ID: "r1"}, []byte("g"), []NodeRecord{{ID: "a"}, {ID: "b"}}); err != nil {
		f.Fatal(err)
	}
	_ = s.Apply(context.Background(), Change{RunID: "r1", Node: &NodeRecord{ID: "a", State: NodeSucceeded}, Entry: &Entry{Type: "x"}})
	s.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	flipped := bytes.Clone(good)
	flipped[2*4096+100] ^= 0xff
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(p, Options{ReadOnly: true})
		if err != nil {
			return
		}
		defer s.Close()
		runs, _ := s.Runs()
		for _, r := range runs {
			_, _ = s.Nodes(r.ID)
			_, _ = s.Snapshot(r.ID)
			_, _ = s.Verify(r.ID)
			_ = s.Journal(r.ID, 0, func(Entry) error { return nil })
		}
	})
}

// TestBranchKeyPastPage: a page whose key runs past the page (and the
// mapped file) is refused before the first write; bbolt's own check, which
// reads every key in a goroutine where a fault cannot be recovered, would
// crash the process on it (seen once in TestDamagedPages' random rounds,
// on a leaf key of 2.4 MiB).
func TestBranchKeyPastPage(t *testing.T) {
	path, good := mustStateFile(t)
	pageSize := int(binary.LittleEndian.Uint32(good[16+8:]))
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	branch := -1
	_ = db.View(func(tx *bolt.Tx) error {
		for id := 2; branch < 0; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "branch" && info.Count > 1 {
				branch = id
			}
		}
		return nil
	})
	db.Close()
	if branch < 0 {
		t.Fatal("the test file has no branch page with two keys")
	}
	b := bytes.Clone(good)
	// Element 1's ksize: 4 MiB (past the file; bbolt slices keys up to 2 GiB
	// without complaint).
	binary.LittleEndian.PutUint32(b[branch*pageSize+16+16+4:], 4<<20)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err == nil {
		err = s.Apply(context.Background(), Change{RunID: "r1",
			Node: &NodeRecord{ID: "n0150", State: NodeFailed}, Entry: &Entry{Type: "node-failed"}})
		s.Close()
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), fmt.Sprintf("branch page %d: element 1 (key of 4194304 bytes", branch)) {
		t.Fatalf("write to a file with a branch key past its page = %v, want a CorruptError naming it", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
		t.Error("the damaged file was written to")
	}
}
