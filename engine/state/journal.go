package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// hashTail is how the canonical encoding of an entry ends: Hash is the
// last field, empty.
var hashTail = []byte(`"hash":""}`)

// sealEntry encodes e (whose Hash is ignored) and returns the bytes to
// store and the entry's hash: the hex SHA-256 of the canonical encoding,
// which is the JSON of e with Hash "" (as encoding/json writes it),
// spliced into the hash field.
func sealEntry(e *Entry) (stored []byte, hash string, err error) {
	e.Hash = ""
	canon := appendEntryJSON(make([]byte, 0, 256), e)
	if !bytes.HasSuffix(canon, hashTail) {
		return nil, "", errors.New("hash field is not last in the encoding")
	}
	sum := sha256.Sum256(canon)
	hash = hex.EncodeToString(sum[:])
	stored = make([]byte, 0, len(canon)+len(hash))
	stored = append(stored, canon[:len(canon)-2]...)
	stored = append(stored, hash...)
	stored = append(stored, `"}`...)
	e.Hash = hash
	return stored, hash, nil
}

const hexLen = 2 * sha256.Size

// checkEntry checks the hash of a stored entry against its bytes and reads
// its Seq, Prev and Hash without decoding the rest: once the hash matches,
// the bytes are those sealEntry wrote, with Seq first and Prev, Hash last.
func checkEntry(stored []byte) (seq uint64, prev, hash string, err error) {
	seq, p, h, err := checkEntryBytes(stored)
	return seq, string(p), string(h), err
}

// checkEntryBytes is checkEntry with Prev and Hash as parts of stored.
func checkEntryBytes(stored []byte) (seq uint64, prev, hash []byte, err error) {
	n := len(stored)
	const hashKey, prevKey = `"hash":"`, `"prev":"`
	if n < len(hashKey)+hexLen+2 || !bytes.HasSuffix(stored, []byte(`"}`)) ||
		string(stored[n-2-hexLen-len(hashKey):n-2-hexLen]) != hashKey {
		return 0, nil, nil, errors.New("no hash field at the end of the entry")
	}
	hash = stored[n-2-hexLen : n-2]
	body := stored[:n-2-hexLen] // up to `"hash":"`
	h := sha256.New()
	h.Write(body)
	h.Write([]byte(`"}`))
	var sum [sha256.Size]byte
	var got [hexLen]byte
	hex.Encode(got[:], h.Sum(sum[:0]))
	if string(got[:]) != string(hash) {
		return 0, nil, nil, fmt.Errorf("content hash %s does not match the stored hash %s", got[:], hash)
	}
	rest, ok := bytes.CutPrefix(body, []byte(`{"seq":`))
	i := bytes.IndexByte(rest, ',')
	if !ok || i < 1 {
		return 0, nil, nil, errors.New("no sequence number at the start of the entry")
	}
	if seq, err = strconv.ParseUint(string(rest[:i]), 10, 64); err != nil {
		return 0, nil, nil, fmt.Errorf("sequence number %q: %v", rest[:i], err)
	}
	body = body[:len(body)-len(hashKey)-len(`",`)] // ends with the prev value
	switch {
	case bytes.HasSuffix(body, []byte(prevKey)):
		prev = body[len(body):]
	case len(body) > hexLen+len(prevKey) && string(body[len(body)-hexLen-len(prevKey):len(body)-hexLen]) == prevKey:
		prev = body[len(body)-hexLen:]
	default:
		return 0, nil, nil, errors.New("no previous hash before the hash")
	}
	return seq, prev, hash, nil
}

// openEntry checks the hash of a stored entry and decodes it.
func openEntry(stored []byte) (Entry, error) {
	var e Entry
	_, _, stated, err := checkEntry(stored)
	if err != nil {
		return e, err
	}
	if err := decodeEntry(stored, &e); err != nil {
		return e, fmt.Errorf("decode: %v", err)
	}
	if e.Hash != stated {
		return e, fmt.Errorf("decoded hash %q differs from the stored bytes", e.Hash)
	}
	return e, nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// A journal head is the last sequence number (8 bytes, big-endian) and the
// last entry's hash (32 bytes).
func encodeHead(seq uint64, hash string) []byte {
	b := make([]byte, 8, 8+sha256.Size)
	binary.BigEndian.PutUint64(b, seq)
	raw, _ := hex.DecodeString(hash)
	return append(b, raw...)
}

func decodeHead(b []byte) (uint64, string, error) {
	if len(b) != 8+sha256.Size {
		return 0, "", fmt.Errorf("bad journal head: %d bytes, want %d", len(b), 8+sha256.Size)
	}
	return binary.BigEndian.Uint64(b), hex.EncodeToString(b[8:]), nil
}

// journalChunk is how many entries Journal reads per read transaction, so
// that a slow fn does not hold a transaction open for long.
const journalChunk = 1024

// Journal calls fn with each journal entry of a run whose Seq is above
// afterSeq, in order, and stops at fn's first error, which it returns.
// fn runs outside any transaction. A damaged entry gives *CorruptError,
// after fn was called with every entry before it (a reader may go on after
// the damaged entry with a higher afterSeq).
func (s *Store) Journal(runID string, afterSeq uint64, fn func(Entry) error) error {
	for {
		var chunk []Entry
		var damaged error
		err := s.view(func(tx *bolt.Tx) error {
			if !runExists(tx, runID) {
				return fmt.Errorf("run %q: %w", runID, ErrRunNotFound)
			}
			b := tx.Bucket(bucketJournal).Bucket([]byte(runID))
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.Seek(seqKey(afterSeq + 1)); k != nil && len(chunk) < journalChunk; k, v = c.Next() {
				e, err := openEntry(v)
				if err != nil {
					damaged = s.corrupt("journal entry %x of run %q: %v", k, runID, err)
					break
				}
				chunk = append(chunk, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if err := fn(e); err != nil {
				return err
			}
			afterSeq = e.Seq
		}
		if damaged != nil {
			return damaged
		}
		if len(chunk) < journalChunk {
			return nil
		}
	}
}

// Head returns the sequence number and hash of a run's last journal entry,
// as its journal head records them: what an anchor outside the file keeps.
func (s *Store) Head(runID string) (seq uint64, hash string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if !runExists(tx, runID) {
			return fmt.Errorf("run %q: %w", runID, ErrRunNotFound)
		}
		raw := tx.Bucket(bucketHeads).Get([]byte(runID))
		if raw == nil {
			return nil
		}
		var derr error
		if seq, hash, derr = decodeHead(raw); derr != nil {
			return s.corrupt("journal head of run %q: %v", runID, derr)
		}
		return nil
	})
	return seq, hash, err
}
