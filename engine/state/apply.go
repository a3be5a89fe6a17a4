package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// request is one Apply call waiting for the writer.
type request struct {
	changes []encodedChange
	err     error
	done    chan struct{}
}

// encodedChange is a Change with its records already encoded by the
// caller's goroutine, so the writer only does the bbolt work.
type encodedChange struct {
	runID      string
	run        *Run // a private copy
	nodeID     string
	nodeState  NodeState
	node       []byte
	removeNode string
	snapshot   []byte
	entry      *Entry // a private copy
}

type statCounters struct {
	commits, changes, applies, failed atomic.Uint64
	queued                            atomic.Uint64 // requests handed to the writer (for tests)
}

// Stats returns the store's counters since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Commits: s.stats.commits.Load(),
		Changes: s.stats.changes.Load(),
		Applies: s.stats.applies.Load(),
		Failed:  s.stats.failed.Load(),
	}
}

// Apply applies changes in one transaction, each with its journal entry,
// and returns once they are durable (committed and fdatasync'ed, unless
// Options.NoSync).
//
// Apply may be called from many goroutines at once: a single writer
// goroutine takes every change queued since its last commit and commits
// them all in one bbolt transaction (group commit, no timer), then wakes
// every caller of that batch. If the commit fails, every caller of the
// batch gets the error and none of their changes is stored. A call whose
// changes name an unknown run fails alone with ErrRunNotFound, and none of
// its changes is stored; a malformed change fails with ErrInvalidChange
// before anything is queued.
//
// If ctx is done before the changes are queued, Apply returns ctx.Err()
// and nothing is applied. If it is done while they wait for the writer,
// Apply returns ctx.Err() at once, but the changes may still be committed:
// read the state back to know.
func (s *Store) Apply(ctx context.Context, changes ...Change) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	req := &request{changes: make([]encodedChange, 0, len(changes)), done: make(chan struct{})}
	for i := range changes {
		ec, err := encodeChange(&changes[i])
		if err != nil {
			return err
		}
		req.changes = append(req.changes, ec)
	}
	if !s.queue.Push(req) {
		return ErrClosed
	}
	s.stats.queued.Add(1)
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func encodeChange(c *Change) (encodedChange, error) {
	ec := encodedChange{runID: c.RunID, removeNode: c.RemoveNode}
	if err := checkKey("run id", c.RunID); err != nil {
		return ec, err
	}
	if c.Run != nil {
		if c.Run.ID != c.RunID {
			return ec, fmt.Errorf("change of run %q carries the record of run %q: %w", c.RunID, c.Run.ID, ErrInvalidChange)
		}
		run := *c.Run
		run.Options.Targets = slices.Clone(run.Options.Targets)
		if run.Cleanup != nil {
			cl := *run.Cleanup
			run.Cleanup = &cl
		}
		ec.run = &run
	}
	if c.Node != nil {
		b, err := encodeNode(c.Node)
		if err != nil {
			return ec, err
		}
		ec.nodeID, ec.nodeState, ec.node = c.Node.ID, c.Node.State, b
	}
	if c.Snapshot != nil {
		ec.snapshot = append([]byte{}, c.Snapshot...)
	}
	if c.Entry != nil {
		e := *c.Entry
		e.Data = maps.Clone(e.Data)
		// Only the store says what run record an entry comes with.
		delete(e.Data, dataRunRecord)
		if e.Time.IsZero() {
			e.Time = time.Now() // when it was asked for, not when it landed
		}
		if e.Type == "" {
			return ec, fmt.Errorf("journal entry of run %q: empty type: %w", c.RunID, ErrInvalidChange)
		}
		ec.entry = &e
	}
	return ec, nil
}

func encodeNode(n *NodeRecord) ([]byte, error) {
	if err := checkKey("node id", n.ID); err != nil {
		return nil, err
	}
	rec := *n
	if len(rec.History) > MaxHistory {
		rec.History = rec.History[len(rec.History)-MaxHistory:]
	}
	return marshalNode(&rec), nil
}

func checkKey(what, k string) error {
	if k == "" || len(k) > bolt.MaxKeySize {
		return fmt.Errorf("%s %q: want 1 to %d bytes: %w", what, k, bolt.MaxKeySize, ErrInvalidChange)
	}
	return nil
}

// commit applies a batch in one transaction and wakes its callers.
func (s *Store) commit(batch []*request) {
	var applied []*request
	err := s.update(func(tx *bolt.Tx) error {
		applied = applied[:0]
		w := newTxWriter(tx, s.path)
		for _, req := range batch {
			if err := w.check(req.changes); err != nil {
				req.err = err
				continue
			}
			for i := range req.changes {
				if err := w.apply(&req.changes[i]); err != nil {
					return err
				}
			}
			applied = append(applied, req)
		}
		return w.flush()
	})
	n := 0
	for _, req := range applied {
		n += len(req.changes)
	}
	if err != nil {
		// Nothing of the batch is stored: every caller that was not
		// refused on its own gets the error.
		err = fmt.Errorf("commit %d changes to %s: %w", n, s.path, err)
		for _, req := range batch {
			if req.err == nil {
				req.err = err
				s.stats.failed.Add(1)
			}
		}
	} else if len(applied) > 0 {
		s.stats.commits.Add(1)
		s.stats.changes.Add(uint64(n))
		s.stats.applies.Add(uint64(len(applied)))
	}
	for _, req := range batch {
		close(req.done)
	}
}

// txWriter applies changes inside one write transaction, keeping each
// run's journal head in memory until flush.
type txWriter struct {
	tx    *bolt.Tx
	path  string // for errors
	heads map[string]*head
	// each run's buckets, looked up once a transaction
	journals, nodes map[string]*bolt.Bucket
}

type head struct {
	seq  uint64
	hash string
}

func newTxWriter(tx *bolt.Tx, path string) *txWriter {
	return &txWriter{tx: tx, path: path, heads: map[string]*head{},
		journals: map[string]*bolt.Bucket{}, nodes: map[string]*bolt.Bucket{}}
}

// check refuses a request whose runs are not stored, before any write.
func (w *txWriter) check(changes []encodedChange) error {
	for i := range changes {
		if !runExists(w.tx, changes[i].runID) {
			return fmt.Errorf("run %q: %w", changes[i].runID, ErrRunNotFound)
		}
	}
	return nil
}

func runExists(tx *bolt.Tx, id string) bool {
	return tx.Bucket(bucketRuns).Get([]byte(id)) != nil
}

func (w *txWriter) apply(c *encodedChange) error {
	if c.snapshot != nil {
		if err := w.tx.Bucket(bucketSnapshots).Put([]byte(c.runID), c.snapshot); err != nil {
			return fmt.Errorf("put snapshot of run %q: %w", c.runID, err)
		}
	}
	if c.node != nil || c.removeNode != "" {
		nb := w.nodes[c.runID]
		if nb == nil {
			var err error
			if nb, err = w.tx.Bucket(bucketNodes).CreateBucketIfNotExists([]byte(c.runID)); err != nil {
				return fmt.Errorf("nodes of run %q: %w", c.runID, err)
			}
			// Records grow as a run goes (pending → running → succeeded):
			// split full leaves into fuller pages than bbolt's default half.
			nb.FillPercent = 0.9
			w.nodes[c.runID] = nb
		}
		if c.removeNode != "" {
			if err := nb.Delete([]byte(c.removeNode)); err != nil {
				return fmt.Errorf("remove node %q of run %q: %w", c.removeNode, c.runID, err)
			}
		}
		if c.node != nil {
			if err := nb.Put([]byte(c.nodeID), c.node); err != nil {
				return fmt.Errorf("put node %q of run %q: %w", c.nodeID, c.runID, err)
			}
		}
	}
	var runStored []byte
	if c.run != nil || c.snapshot != nil {
		var err error
		if runStored, err = w.putRun(c.runID, c.run); err != nil {
			return err
		}
	}
	for _, e := range c.plan(runStored) {
		if err := w.append(c.runID, e); err != nil {
			return err
		}
	}
	return nil
}

// plan returns the journal entries a change appends, in order. Every
// change to a node record, a snapshot or the run record is journaled, with
// what Verify needs to check the stored bytes against the journal: the
// node record's digest, the snapshot's hash, the run record as stored
// (runStored; nil when the change stores none).
// The store writes an entry itself (node removed, node updated, snapshot
// replaced, run updated) for what the change's own entry does not cover.
// Each call returns new store entries; the change's own entry is completed
// in place.
func (c *encodedChange) plan(runStored []byte) []*Entry {
	entry := c.entry
	var out []*Entry
	if c.snapshot != nil {
		if entry == nil {
			entry = &Entry{Type: EntrySnapshotReplaced}
		}
		if entry.Data == nil {
			entry.Data = map[string]string{}
		}
		entry.Data[dataGraphHash] = sha256Hex(c.snapshot)
	}
	if c.removeNode != "" {
		out = append(out, &Entry{Type: EntryNodeRemoved, NodeID: c.removeNode})
	}
	if c.node != nil {
		if entry != nil && entry.NodeID == c.nodeID {
			entry.Record = recordDigest(c.node)
		} else {
			out = append(out, &Entry{Type: EntryNodeUpdated, NodeID: c.nodeID, State: c.nodeState, Record: recordDigest(c.node)})
		}
	}
	if entry != nil {
		out = append(out, entry)
	}
	if runStored != nil {
		if len(out) == 0 {
			out = append(out, &Entry{Type: EntryRunUpdated})
		}
		stampRun(out[len(out)-1], runStored)
	}
	return out
}

// putRun stores run (nil: the stored record) with its GraphHash set to the
// SHA-256 of the run's snapshot as stored now: the store keeps the two in
// step, so that Verify can hold the snapshot to the hash. It returns the
// bytes stored, for the journal.
func (w *txWriter) putRun(runID string, run *Run) ([]byte, error) {
	if run == nil {
		raw := w.tx.Bucket(bucketRuns).Get([]byte(runID))
		run = &Run{}
		if err := json.Unmarshal(raw, run); err != nil {
			return nil, &CorruptError{Path: w.path, Err: fmt.Errorf("record of run %q: %v", runID, err)}
		}
	}
	run.GraphHash = sha256Hex(w.tx.Bucket(bucketSnapshots).Get([]byte(runID)))
	b, err := encodeRun(run)
	if err != nil {
		return nil, err
	}
	if err := w.tx.Bucket(bucketRuns).Put([]byte(runID), b); err != nil {
		return nil, fmt.Errorf("put run %q: %w", runID, err)
	}
	return b, nil
}

// dataGraphHash is the Data key of the entries that change a run's graph
// snapshot (and of its run-created entry): the snapshot's hex SHA-256.
const dataGraphHash = "graph_hash"

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// recordDigest is Entry.Record for a stored node record: 16 bytes of its
// SHA-256, in hex.
func recordDigest(stored []byte) string {
	sum := sha256.Sum256(stored)
	return hex.EncodeToString(sum[:16])
}

// append chains e to the run's journal and stores it.
func (w *txWriter) append(runID string, e *Entry) error {
	h, err := w.head(runID)
	if err != nil {
		return err
	}
	jb := w.journals[runID]
	if jb == nil {
		if jb, err = w.tx.Bucket(bucketJournal).CreateBucketIfNotExists([]byte(runID)); err != nil {
			return fmt.Errorf("journal of run %q: %w", runID, err)
		}
		jb.FillPercent = 0.95 // keys only grow: pack the pages
		w.journals[runID] = jb
	}
	stored, hash, err := chainEntry(e, h.seq+1, h.hash)
	if err != nil {
		return fmt.Errorf("encode journal entry %d of run %q: %w", e.Seq, runID, err)
	}
	// Append only: never overwrite an entry, whatever the head says.
	if jb.Get(seqKey(e.Seq)) != nil {
		return &CorruptError{Path: w.path, Err: fmt.Errorf("run %q: journal entry %d already exists but the journal head says %d: the head is damaged; the journal was not changed", runID, e.Seq, h.seq)}
	}
	if err := jb.Put(seqKey(e.Seq), stored); err != nil {
		return fmt.Errorf("put journal entry %d of run %q: %w", e.Seq, runID, err)
	}
	h.seq, h.hash = e.Seq, hash
	return nil
}

// chainEntry makes e entry seq of its journal, after the entry of hash
// prev, and seals it: its time defaults to now and is kept in UTC.
func chainEntry(e *Entry, seq uint64, prev string) (stored []byte, hash string, err error) {
	e.Seq, e.Prev = seq, prev
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	return sealEntry(e)
}

func (w *txWriter) head(runID string) (*head, error) {
	if h, ok := w.heads[runID]; ok {
		return h, nil
	}
	h := &head{}
	if raw := w.tx.Bucket(bucketHeads).Get([]byte(runID)); raw != nil {
		var err error
		if h.seq, h.hash, err = decodeHead(raw); err != nil {
			return nil, &CorruptError{Path: w.path, Err: fmt.Errorf("journal head of run %q: %w", runID, err)}
		}
	}
	w.heads[runID] = h
	return h, nil
}

// flush stores the journal heads moved by this transaction.
func (w *txWriter) flush() error {
	for id, h := range w.heads {
		if err := w.tx.Bucket(bucketHeads).Put([]byte(id), encodeHead(h.seq, h.hash)); err != nil {
			return fmt.Errorf("put journal head of run %q: %w", id, err)
		}
	}
	return nil
}

// update runs fn in a write transaction, turning a bbolt panic or fault
// on a damaged file into *CorruptError.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	if err := s.checkBeforeWrite(); err != nil {
		return err
	}
	defer faultsPanic()()
	defer s.guard(&err)
	err = s.db.Update(fn)
	var ce *CorruptError
	if errors.As(err, &ce) {
		ce.Written = s.written.Load()
	}
	if err == nil {
		s.written.Store(true)
	}
	return s.mapErr(err)
}

// view runs fn in a read transaction, like update.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer faultsPanic()()
	defer s.guard(&err)
	err = s.db.View(fn)
	return s.mapErr(err)
}

func (s *Store) mapErr(err error) error {
	if err != nil && errors.Is(err, errDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
