package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CreateRun stores a new run, its graph snapshot and its node records, and
// journals a "run-created" entry, in one durable transaction. Run.Total is
// set to len(nodes), Run.GraphHash to the snapshot's SHA-256 when empty,
// and Created/Updated to now when zero. It fails with ErrRunExists if the
// id is taken.
func (s *Store) CreateRun(ctx context.Context, run Run, snapshot []byte, nodes []NodeRecord) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := PrepareRun(run, snapshot, nodes)
	if err != nil {
		return err
	}
	if s.queue.Closed() {
		return ErrClosed
	}
	return s.update(func(tx *bolt.Tx) error {
		if runExists(tx, p.Run.ID) {
			return fmt.Errorf("create run %q: %w", p.Run.ID, ErrRunExists)
		}
		if err := tx.Bucket(bucketRuns).Put([]byte(p.Run.ID), p.Record); err != nil {
			return fmt.Errorf("create run %q: %w", p.Run.ID, err)
		}
		if err := tx.Bucket(bucketSnapshots).Put([]byte(p.Run.ID), append([]byte{}, snapshot...)); err != nil {
			return fmt.Errorf("create run %q: snapshot: %w", p.Run.ID, err)
		}
		nb, err := tx.Bucket(bucketNodes).CreateBucketIfNotExists([]byte(p.Run.ID))
		if err != nil {
			return fmt.Errorf("create run %q: %w", p.Run.ID, err)
		}
		nb.FillPercent = 0.9
		for i := range p.Nodes {
			if err := nb.Put([]byte(p.Nodes[i].ID), p.Nodes[i].Stored); err != nil {
				return fmt.Errorf("create run %q: node %q: %w", p.Run.ID, p.Nodes[i].ID, err)
			}
		}
		w := newTxWriter(tx, s.path)
		if err := w.append(p.Run.ID, p.Created); err != nil {
			return err
		}
		return w.flush()
	})
}

// PreparedRun is a new run checked and encoded by PrepareRun, for a
// backend to store in one transaction (or, on etcd, in several, the run
// record last).
type PreparedRun struct {
	Run    Run          // with Created, Updated, Status, Total and GraphHash set
	Record []byte       // the run record to store
	Nodes  []StoredNode // the node records to store, in the order given
	// Created is the run-created entry to journal first (not sealed yet:
	// SealEntry makes it entry 1).
	Created *Entry
}

// StoredNode is a node record as a backend stores it (EncodeNode).
type StoredNode struct {
	ID     string
	Stored []byte
}

// PrepareRun checks and encodes a new run for CreateRun: Run.Total is set
// to len(nodes), Run.GraphHash to the snapshot's SHA-256 when empty, and
// Created/Updated to now when zero. It fails with ErrInvalidChange for a
// bad id, a node given twice or a graph hash that is not the snapshot's.
func PrepareRun(run Run, snapshot []byte, nodes []NodeRecord) (*PreparedRun, error) {
	if err := checkKey("run id", run.ID); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if run.Created.IsZero() {
		run.Created = now
	}
	if run.Updated.IsZero() {
		run.Updated = run.Created
	}
	if run.Status == "" {
		run.Status = RunRunning
	}
	if sum := sha256Hex(snapshot); run.GraphHash == "" {
		run.GraphHash = sum
	} else if run.GraphHash != sum {
		return nil, fmt.Errorf("create run %q: graph hash %.12s… is not the snapshot's SHA-256 %.12s…: %w", run.ID, run.GraphHash, sum, ErrInvalidChange)
	}
	run.Total = len(nodes)
	rb, err := encodeRun(&run)
	if err != nil {
		return nil, err
	}
	p := &PreparedRun{Run: run, Record: rb, Nodes: make([]StoredNode, len(nodes))}
	seen := make(map[string]struct{}, len(nodes))
	pinned := map[string]string{} // digests of the initial records that are not plainly pending
	for i := range nodes {
		if _, dup := seen[nodes[i].ID]; dup {
			return nil, fmt.Errorf("create run %q: node %q given twice: %w", run.ID, nodes[i].ID, ErrInvalidChange)
		}
		seen[nodes[i].ID] = struct{}{}
		b, err := encodeNode(&nodes[i])
		if err != nil {
			return nil, fmt.Errorf("create run %q: %w", run.ID, err)
		}
		p.Nodes[i] = StoredNode{ID: nodes[i].ID, Stored: b}
		if !isPlainRecord(nodes[i].ID, b) {
			pinned[nodes[i].ID] = recordDigest(b)
		}
	}
	p.Created = &Entry{Time: run.Created, Type: EntryRunCreated,
		Message: fmt.Sprintf("run of %s created with %d nodes", run.GraphName, len(nodes)),
		Data: map[string]string{dataGraphHash: run.GraphHash, "graph_file": run.GraphFile,
			dataNodes: strconv.Itoa(len(nodes))}}
	if len(pinned) > 0 {
		b, _ := json.Marshal(pinned)
		p.Created.Data[dataInitialRecords] = string(b)
	}
	stampRun(p.Created, rb)
	return p, nil
}

// The run-created entry pins the initial node records that no later entry
// will: dataNodes is how many there were, dataInitialRecords the digests
// (JSON {"id": "digest"}) of those that are not a plain pending record
// (a node skipped as not targeted, for instance).
const (
	dataNodes          = "nodes"
	dataInitialRecords = "initial_records"
)

// isPlainRecord reports whether stored is the record of node id pending
// and nothing else, as a run creates most of its records.
func isPlainRecord(id string, stored []byte) bool {
	return bytes.Equal(stored, marshalNode(&NodeRecord{ID: id, State: NodePending}))
}

// NewRunID returns a new run id, sortable by time: the UTC date and time
// of now and 4 random hex digits, e.g. "20261128-203512-3fa9".
func NewRunID(now time.Time) string {
	var r [2]byte
	_, _ = rand.Read(r[:])
	return now.UTC().Format("20060102-150405-") + hex.EncodeToString(r[:])
}
