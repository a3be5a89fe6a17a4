package state

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RunCopy is everything stored for one run, as stored: what `reprise state
// copy` moves between backends. Node records and journal entries keep
// their bytes, so the hash chain and the records' digests hold on the
// other side.
type RunCopy struct {
	Run Run
	// Record is the run record as stored (nil: Run, encoded as the store
	// encodes it): the journal holds a copy of it.
	Record   []byte
	Snapshot []byte
	Nodes    []StoredNode  // by id
	Entries  []StoredEntry // the journal, in order
	Head     []byte        // the journal head as stored (EncodeHead)
}

// StoredEntry is a journal entry as stored, with the sequence number of its
// key.
type StoredEntry struct {
	Seq    uint64
	Stored []byte
}

// Copier is a Backend that exports and imports whole runs as stored.
type Copier interface {
	// ExportRun reads everything stored for a run, as of one moment.
	ExportRun(runID string) (*RunCopy, error)
	// ImportRun stores a run read by ExportRun, whole or not at all; it
	// fails with ErrRunExists when the id is taken.
	ImportRun(ctx context.Context, c *RunCopy) error
}

var _ Copier = (*Store)(nil)

// Verify checks the copy as Verify checks a stored run: a copy that does
// not verify is not worth moving.
func (c *RunCopy) Verify() (VerifyReport, error) { return VerifyRun(c.Run, copyData{c}) }

type copyData struct{ c *RunCopy }

func (d copyData) Journal(fn func(key []byte, seq uint64, stored []byte) error) error {
	for _, e := range d.c.Entries {
		if err := fn(seqKey(e.Seq), e.Seq, e.Stored); err != nil {
			return err
		}
	}
	return nil
}

func (d copyData) Head() ([]byte, error) { return d.c.Head, nil }

func (d copyData) Records(fn func(id string, stored []byte) error) error {
	for _, n := range d.c.Nodes {
		if err := fn(n.ID, n.Stored); err != nil {
			return err
		}
	}
	return nil
}

func (d copyData) Snapshot() ([]byte, error) { return d.c.Snapshot, nil }

func (d copyData) RunRecord() ([]byte, error) { return d.c.record() }

// record returns the run record to store: Record, or Run encoded.
func (c *RunCopy) record() ([]byte, error) {
	if c.Record != nil {
		return c.Record, nil
	}
	return encodeRun(&c.Run)
}

// StoredRecord returns the run record an importer stores: Record as it
// is, or Run encoded as the store encodes it when Record is nil.
func (c *RunCopy) StoredRecord() ([]byte, error) { return c.record() }

// ExportRun reads everything stored for a run in one read transaction.
func (s *Store) ExportRun(runID string) (*RunCopy, error) {
	c := &RunCopy{}
	err := s.view(func(tx *bolt.Tx) error {
		run, err := s.getRun(tx, runID)
		if err != nil {
			return err
		}
		c.Run = run
		c.Record = append([]byte{}, tx.Bucket(bucketRuns).Get([]byte(runID))...)
		c.Snapshot = append([]byte{}, tx.Bucket(bucketSnapshots).Get([]byte(runID))...)
		c.Head = append([]byte{}, tx.Bucket(bucketHeads).Get([]byte(runID))...)
		b := boltRun{tx: tx, id: []byte(runID)}
		if err := b.Records(func(id string, stored []byte) error {
			c.Nodes = append(c.Nodes, StoredNode{ID: id, Stored: append([]byte{}, stored...)})
			return nil
		}); err != nil {
			return err
		}
		return b.Journal(func(_ []byte, seq uint64, stored []byte) error {
			c.Entries = append(c.Entries, StoredEntry{Seq: seq, Stored: append([]byte{}, stored...)})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ImportRun stores a copied run in one transaction, its bytes unchanged.
func (s *Store) ImportRun(ctx context.Context, c *RunCopy) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	id := c.Run.ID
	if err := checkKey("run id", id); err != nil {
		return err
	}
	rb, err := c.record()
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if runExists(tx, id) {
			return fmt.Errorf("copy run %q: %w", id, ErrRunExists)
		}
		put := func(b *bolt.Bucket, k, v []byte) error {
			if err := b.Put(k, v); err != nil {
				return fmt.Errorf("copy run %q: %w", id, err)
			}
			return nil
		}
		if err := put(tx.Bucket(bucketRuns), []byte(id), rb); err != nil {
			return err
		}
		if err := put(tx.Bucket(bucketSnapshots), []byte(id), c.Snapshot); err != nil {
			return err
		}
		if len(c.Head) > 0 {
			if err := put(tx.Bucket(bucketHeads), []byte(id), c.Head); err != nil {
				return err
			}
		}
		nb, err := tx.Bucket(bucketNodes).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return fmt.Errorf("copy run %q: %w", id, err)
		}
		nb.FillPercent = 0.9
		for _, n := range c.Nodes {
			if err := put(nb, []byte(n.ID), n.Stored); err != nil {
				return err
			}
		}
		jb, err := tx.Bucket(bucketJournal).CreateBucketIfNotExists([]byte(id))
		if err != nil {
			return fmt.Errorf("copy run %q: %w", id, err)
		}
		jb.FillPercent = 0.95
		for _, e := range c.Entries {
			if err := put(jb, seqKey(e.Seq), e.Stored); err != nil {
				return err
			}
		}
		return nil
	})
}
