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

// TestDamageCaughtBeforeWrite flips one byte deep in the file, where
// bbolt's meta pages do not look: the writer's Open must refuse the file,
// say it left it untouched, and leave it byte for byte as it was.
func TestDamageCaughtBeforeWrite(t *testing.T) {
	_, good := mustStateFile(t)
	pageSize := int(binary.LittleEndian.Uint32(good[16+8:]))
	at := func(needle string, nth, off int) func(*testing.T, []byte) int {
		return func(t *testing.T, b []byte) int {
			i := -1
			for range nth + 1 {
				j := bytes.Index(b[i+1:], []byte(needle))
				if j < 0 {
					t.Fatalf("needle %q not found %d times", needle, nth+1)
				}
				i += 1 + j
			}
			return i + off
		}
	}
	// live finds the copy of needle that the file's live value holds
	// (bbolt leaves older copies in freed pages): flipping it changes what
	// read returns.
	live := func(needle string, off int, read func(*bolt.Tx) []byte) func(*testing.T, []byte) int {
		return func(t *testing.T, b []byte) int {
			want := readPlain(t, good, read)
			for i := bytes.Index(b, []byte(needle)); i >= 0; {
				c := bytes.Clone(b)
				c[i+off] ^= 0x01
				if !bytes.Equal(readPlain(t, c, read), want) {
					return i + off
				}
				j := bytes.Index(b[i+1:], []byte(needle))
				if j < 0 {
					break
				}
				i += 1 + j
			}
			t.Fatalf("no live copy of %q", needle)
			return 0
		}
	}
	tests := []struct {
		name  string
		where func(*testing.T, []byte) int
		flip  byte
	}{
		{"journal entry text", at("needle-0041", 0, 3), 0x01},
		{"journal entry state", at(`"node":"n0017"`, 0, 3), 0x01},
		{"graph snapshot", live("version: 1\n", 2, func(tx *bolt.Tx) []byte { return tx.Bucket(bucketSnapshots).Get([]byte("r1")) }), 0x01},
		{"node record of a pending node", live("n0150", 4, func(tx *bolt.Tx) []byte {
			return tx.Bucket(bucketNodes).Bucket([]byte("r1")).Get([]byte("n0150"))
		}), 0x01},
		{"leaf page header (page type)", func(t *testing.T, b []byte) int {
			// the page holding entry 43 of the journal: its flags field
			return at("needle-0041", 0, 0)(t, b)/pageSize*pageSize + 8
		}, 0x40},
		{"leaf page element count", func(t *testing.T, b []byte) int {
			return at("needle-0041", 0, 0)(t, b)/pageSize*pageSize + 10
		}, 0x7f},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reprise.db")
			b := bytes.Clone(good)
			b[tt.where(t, b)] ^= tt.flip
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			before := sha256.Sum256(b)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open for writing accepted a file damaged deep inside")
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Written || !strings.Contains(err.Error(), "left untouched") {
				t.Fatalf("Open = %T %v, want *CorruptError saying the file was left untouched", err, err)
			}
			t.Log(err)
			after, _ := os.ReadFile(path)
			if sha256.Sum256(after) != before {
				t.Error("the damaged file was modified")
			}
		})
	}
}

// TestRandomDamageNeverHalfWritten flips random bytes in the pages in use:
// either Open refuses the file, untouched, or nothing that follows (reads,
// a write) finds damage: never a write first and a damaged file after.
func TestRandomDamageNeverHalfWritten(t *testing.T) {
	path, good := mustStateFile(t)
	pageSize := int(binary.LittleEndian.Uint32(good[16+8:]))
	used := pageSize * int(max(binary.LittleEndian.Uint64(good[16+40:]), binary.LittleEndian.Uint64(good[pageSize+16+40:])))
	r := rand.New(rand.NewPCG(5, 6))
	rounds := 150
	if testing.Short() {
		rounds = 40
	}
	outcomes := map[string]int{}
	for range rounds {
		b := bytes.Clone(good)
		for range 1 + r.IntN(3) {
			b[2*pageSize+r.IntN(used-2*pageSize)] ^= byte(1 + r.IntN(255))
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Written {
				t.Fatalf("Open = %v, want *CorruptError, file untouched", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Fatal("a refused file was modified")
			}
			outcomes["refused before writing"]++
			continue
		}
		err = s.Apply(context.Background(), Change{RunID: "r1",
			Node: &NodeRecord{ID: "n0150", State: NodeFailed}, Entry: &Entry{Type: "node-failed", NodeID: "n0150"}})
		if err == nil {
			_, err = s.Nodes("r1")
		}
		if err == nil {
			err = s.Journal("r1", 0, func(Entry) error { return nil })
		}
		s.Close()
		var ce *CorruptError
		if errors.As(err, &ce) {
			t.Fatalf("damage found after the file was accepted for writing: %v", err)
		}
		outcomes["accepted: harmless byte"]++
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestCorruptErrorSaysWhatHappened: damage found after this process wrote
// to the file must not be reported as "left untouched".
func TestCorruptErrorSaysWhatHappened(t *testing.T) {
	path, _ := mustStateFile(t)
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(context.Background(), Change{RunID: "r1", Entry: &Entry{Type: "x", Message: "needle-late"}}); err != nil {
		t.Fatal(err)
	}
	// Damage the entry just written, in place (bbolt reads through a shared map).
	b, _ := os.ReadFile(path)
	i := bytes.LastIndex(b, []byte("needle-late"))
	if i < 0 {
		t.Fatal("entry not found in the file")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteAt([]byte("X"), int64(i))
	f.Close()
	err = s.Journal("r1", 0, func(Entry) error { return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || !ce.Written || strings.Contains(err.Error(), "untouched") {
		t.Fatalf("Journal after damage = %v, want *CorruptError saying changes were committed", err)
	}
	t.Log(err)
}

// halfMade returns the bytes of a file whose creation was cut short: the
// first n bytes of what bbolt writes when it creates a file (n < 0: all
// of it, with no commit after).
func halfMade(t *testing.T, n int) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "init.db")
	db, err := boltOpenPlain(p)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		b = b[:n]
	}
	return b
}

// TestHalfMadeFileRebuilt: a file left by a creation cut short (disk full,
// crash) holds no run: a reader says so, a writer rebuilds it; a file that
// held a commit, cut as short, is still refused as damaged.
func TestHalfMadeFileRebuilt(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"50 bytes of meta 0", halfMade(t, 50)},
		{"meta 0 only", halfMade(t, 4096)},
		{"metas and part of the freelist", halfMade(t, 9000)},
		{"zeros", make([]byte, 12288)},
		{"bbolt's initial pages, no commit", halfMade(t, -1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reprise.db")
			if err := os.WriteFile(path, tt.b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrNoRunYet) {
				t.Fatalf("read-only Open = %v, want ErrNoRunYet", err)
			}
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatalf("Open for writing = %v, want the file rebuilt", err)
			}
			mustRun(t, s, "r1", 3)
			s.Close()
			r, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if runs, err := r.Runs(); err != nil || len(runs) != 1 {
				t.Errorf("Runs after rebuild = %v, %v", runs, err)
			}
		})
	}
	_, good := mustStateFile(t)
	for _, n := range []int{100, 4096, 9000} {
		path := filepath.Join(t.TempDir(), "reprise.db")
		if err := os.WriteFile(path, good[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		var ce *CorruptError
		if _, err := Open(path, Options{}); !errors.As(err, &ce) {
			t.Errorf("Open of a real state file cut to %d bytes = %v, want *CorruptError", n, err)
		}
	}
}

// TestCreateCutShort creates a state file in a helper process whose file
// size limit (RLIMIT_FSIZE) makes the creation fail half way, as a full
// disk would: no half-made file may be left at the path, and the next
// Open creates the file.
func TestCreateCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	_, _, out := helper(t, "create-limited", path)
	var lines []string
	for out.Scan() {
		lines = append(lines, out.Text())
	}
	got := strings.Join(lines, "\n")
	if !strings.HasPrefix(got, "error ") {
		t.Fatalf("helper: %q, want the creation to fail", got)
	}
	t.Log(got)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed creation, %s exists (%v): a half-made file", path, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*new-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open after a failed creation: %v", err)
	}
	mustRun(t, s, "r1", 2)
	s.Close()
}

// TestConcurrentCreate: many processes' worth of creators at once end up
// with one file that all of them use.
func TestConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				var le *LockedError
				if errors.As(err, &le) {
					err = nil
				}
				errs <- err
				return
			}
			err = s.CreateRun(context.Background(), Run{ID: fmt.Sprintf("r%d", i)}, nil, nil)
			s.Close()
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// readPlain reads one value of the file b with bbolt alone.
func readPlain(t *testing.T, b []byte, read func(*bolt.Tx) []byte) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plain.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	_ = db.View(func(tx *bolt.Tx) error { v = bytes.Clone(read(tx)); return nil })
	return v
}
