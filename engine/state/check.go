package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
//  2. bbolt's Tx.Check: every page reachable once and only once, or free,
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
		for err := range tx.Check() {
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
