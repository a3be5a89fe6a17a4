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
	if err := checkKey("run id", run.ID); err != nil {
		return err
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
		return fmt.Errorf("create run %q: graph hash %.12s… is not the snapshot's SHA-256 %.12s…: %w", run.ID, run.GraphHash, sum, ErrInvalidChange)
	}
	run.Total = len(nodes)
	rb, err := json.Marshal(&run)
	if err != nil {
		return fmt.Errorf("encode run %q: %w", run.ID, err)
	}
	encoded := make([][]byte, len(nodes))
	seen := make(map[string]struct{}, len(nodes))
	pinned := map[string]string{} // digests of the initial records that are not plainly pending
	for i := range nodes {
		if _, dup := seen[nodes[i].ID]; dup {
			return fmt.Errorf("create run %q: node %q given twice: %w", run.ID, nodes[i].ID, ErrInvalidChange)
		}
		seen[nodes[i].ID] = struct{}{}
		if encoded[i], err = encodeNode(&nodes[i]); err != nil {
			return fmt.Errorf("create run %q: %w", run.ID, err)
		}
		if !isPlainRecord(nodes[i].ID, encoded[i]) {
			pinned[nodes[i].ID] = recordDigest(encoded[i])
		}
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return s.update(func(tx *bolt.Tx) error {
		if runExists(tx, run.ID) {
			return fmt.Errorf("create run %q: %w", run.ID, ErrRunExists)
		}
		if err := tx.Bucket(bucketRuns).Put([]byte(run.ID), rb); err != nil {
			return fmt.Errorf("create run %q: %w", run.ID, err)
		}
		if err := tx.Bucket(bucketSnapshots).Put([]byte(run.ID), append([]byte{}, snapshot...)); err != nil {
			return fmt.Errorf("create run %q: snapshot: %w", run.ID, err)
		}
		nb, err := tx.Bucket(bucketNodes).CreateBucketIfNotExists([]byte(run.ID))
		if err != nil {
			return fmt.Errorf("create run %q: %w", run.ID, err)
		}
		nb.FillPercent = 0.9
		for i := range nodes {
			if err := nb.Put([]byte(nodes[i].ID), encoded[i]); err != nil {
				return fmt.Errorf("create run %q: node %q: %w", run.ID, nodes[i].ID, err)
			}
		}
		w := newTxWriter(tx, s.path)
		e := &Entry{Time: run.Created, Type: EntryRunCreated,
			Message: fmt.Sprintf("run of %s created with %d nodes", run.GraphName, len(nodes)),
			Data: map[string]string{dataGraphHash: run.GraphHash, "graph_file": run.GraphFile,
				dataNodes: strconv.Itoa(len(nodes))}}
		if len(pinned) > 0 {
			b, _ := json.Marshal(pinned)
			e.Data[dataInitialRecords] = string(b)
		}
		if err := w.append(run.ID, e); err != nil {
			return err
		}
		return w.flush()
	})
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
