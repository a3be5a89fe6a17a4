package state

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// checkBeforeWrite checks the whole file (checkFile) once per writer
// session, before its first write transaction (from Open, or from that
// transaction with Options.CheckOnFirstWrite), and returns what the check
// found each time it is called: a file found damaged is never written to.
func (s *Store) checkBeforeWrite() error {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if !s.checked {
		s.checkErr = s.checkFile()
		s.checked = true
	}
	return s.checkErr
}

// maxCheckProblems is how many problems a failed file check names.
const maxCheckProblems = 5

// checkFile reads and checks every page of the file before a session's
// first write, so that damage anywhere (a flipped byte in a data page) is
// refused before anything is written. It runs in two passes in one read
// transaction:
//
//  1. a walk, in this goroutine, through every bucket, key and value with
//     bbolt's own reads: a page that would make bbolt panic or fault is
//     found here, where the panic is recovered. Values are checked too: each
//     run record decodes, each snapshot matches its run's graph hash, each
//     node record decodes, each journal entry matches its own hash.
//  2. the bounds of every key and value of every branch and leaf page,
//     read from the file (checkPages): Tx.Check reads them all, in a
//     goroutine of its own where a fault cannot be recovered;
//  3. bbolt's Tx.Check: every page reachable once and only once, or free,
//     keys in order, nothing beyond the high-water mark.
//
// Its cost is one read of the file (BENCH.md: per MB).
func (s *Store) checkFile() error {
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < maxCheckProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	err := s.view(func(tx *bolt.Tx) error {
		checkContent(tx, add)
		if len(problems) > 0 {
			return nil // the structure check may fault on what the walk found
		}
		checkPages(tx, add)
		if len(problems) > 0 {
			return nil // the structure check would read past these pages
		}
		for err := range tx.Check(bolt.WithKVStringer(shortHex{})) {
			add("%v", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return &CorruptError{Path: s.path, Err: errors.New("check before writing: " + strings.Join(problems, "; "))}
	}
	return nil
}

// checkContent walks every bucket of a reprise state file (whose schema
// was validated) and reports each problem it finds through add.
func checkContent(tx *bolt.Tx, add func(string, ...any)) {
	runs := tx.Bucket(bucketRuns)
	hashes := map[string]string{}
	_ = runs.ForEach(func(k, v []byte) error {
		var run Run
		if err := json.Unmarshal(v, &run); err != nil {
			add("record of run %q: %v", k, err)
			return nil
		}
		hashes[string(k)] = run.GraphHash
		return nil
	})
	_ = tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
		want, ok := hashes[string(k)]
		if !ok {
			add("snapshot of run %q, which has no record", k)
			return nil
		}
		if sum := sha256.Sum256(v); want != "" && hex.EncodeToString(sum[:]) != want {
			add("graph snapshot of run %q does not match its graph hash %.12s…", k, want)
		}
		return nil
	})
	_ = tx.Bucket(bucketHeads).ForEach(func(k, v []byte) error {
		if _, _, err := decodeHead(v); err != nil {
			add("journal head of run %q: %v", k, err)
		}
		return nil
	})
	_ = tx.Bucket(bucketNodes).ForEachBucket(func(run []byte) error {
		return tx.Bucket(bucketNodes).Bucket(run).ForEach(func(k, v []byte) error {
			n, err := unmarshalNode(v)
			switch {
			case err != nil:
				add("record of node %q in run %q: %v", k, run, err)
			case n.ID != string(k):
				add("record of node %q in run %q names node %q", k, run, n.ID)
			}
			return nil
		})
	})
	_ = tx.Bucket(bucketJournal).ForEachBucket(func(run []byte) error {
		return tx.Bucket(bucketJournal).Bucket(run).ForEach(func(k, v []byte) error {
			if _, _, _, err := checkEntry(v); err != nil {
				add("journal entry %x of run %q: %v", k, run, err)
			}
			return nil
		})
	})
}

// pageElementSize is the size of an element of a bbolt page
// (go.etcd.io/bbolt/internal/common/page.go): after the page header (id
// u64, flags u16, count u16, overflow u32) come count elements. A branch
// element is pos u32, ksize u32, pgid u64; a leaf element is flags u32,
// pos u32, ksize u32, vsize u32. An element's key starts pos bytes after
// the element itself; a leaf's value follows its key.
const pageElementSize = 16

// checkPages checks, for every branch and leaf page in use (not free)
// below the high-water mark, that its elements, keys and values lie within
// the page. bbolt's Tx.Check reads every key (and prints the ones out of
// order) in a goroutine of its own, where a key running past the mapped
// file crashes the process: a fault there cannot be recovered, unlike in
// the walk of checkContent, which does not read branch keys nor the keys
// of every bucket. The pages are read from the file, not the mapping.
func checkPages(tx *bolt.Tx, add func(string, ...any)) {
	pageSize := tx.DB().Info().PageSize
	f, err := os.Open(tx.DB().Path())
	if err != nil {
		add("read the pages: %v", err)
		return
	}
	defer f.Close()
	var buf []byte
	for id := 2; ; {
		info, err := tx.Page(id)
		if err != nil {
			return // a read-only handle has no freelist: it never writes
		}
		if info == nil {
			return // the high-water mark
		}
		if info.Type == "free" {
			id++ // a freed span frees each of its pages
			continue
		}
		if last, _ := tx.Page(id + info.OverflowCount); last == nil {
			add("page %d: %d overflow pages run past the end of the pages in use", id, info.OverflowCount)
			return
		}
		if info.Type == "branch" || info.Type == "leaf" {
			span := pageSize * (1 + info.OverflowCount)
			if cap(buf) < span {
				buf = make([]byte, span)
			}
			buf = buf[:span]
			if _, err := f.ReadAt(buf, int64(id)*int64(pageSize)); err != nil {
				add("page %d: %v", id, err)
				return
			}
			if problem := pageBounds(buf, info.Type == "leaf"); problem != "" {
				add("%s page %d: %s", info.Type, id, problem)
				return
			}
		}
		id += 1 + info.OverflowCount
	}
}

// pageBounds says what in page p (its whole span) lies outside it, or "".
func pageBounds(p []byte, leaf bool) string {
	count := int(binary.LittleEndian.Uint16(p[10:12]))
	if pageHeaderSize+count*pageElementSize > len(p) {
		return fmt.Sprintf("%d elements do not fit in %d bytes", count, len(p))
	}
	for i := range count {
		e := pageHeaderSize + i*pageElementSize
		var pos, ksize, vsize uint32
		if leaf {
			pos, ksize, vsize = binary.LittleEndian.Uint32(p[e+4:]), binary.LittleEndian.Uint32(p[e+8:]), binary.LittleEndian.Uint32(p[e+12:])
		} else {
			pos, ksize = binary.LittleEndian.Uint32(p[e:]), binary.LittleEndian.Uint32(p[e+4:])
		}
		if end := uint64(e) + uint64(pos) + uint64(ksize) + uint64(vsize); end > uint64(len(p)) {
			return fmt.Sprintf("element %d (key of %d bytes, value of %d, at %d) runs past the page", i, ksize, vsize, pos)
		}
	}
	return ""
}

// shortHex prints at most the first 16 bytes of a key or value in bbolt's
// check messages, and the length (its default prints them whole).
type shortHex struct{}

func (shortHex) KeyToString(b []byte) string   { return shortHexString(b) }
func (shortHex) ValueToString(b []byte) string { return shortHexString(b) }

func shortHexString(b []byte) string {
	if len(b) <= 16 {
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("%s… (%d bytes)", hex.EncodeToString(b[:16]), len(b))
}
