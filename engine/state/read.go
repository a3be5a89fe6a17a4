package state

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sort"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var errDatabaseNotOpen = bolterrors.ErrDatabaseNotOpen

// guard turns a panic of bbolt on a damaged file into *CorruptError. It
// must be deferred directly; SetPanicOnFault turns a fault on the mapped
// file (SIGBUS past its end) into such a panic.
func (s *Store) guard(err *error) {
	if r := recover(); r != nil {
		*err = &CorruptError{Path: s.path, Err: fmt.Errorf("bbolt: %v", r), Written: s.written.Load()}
	}
}

func faultsPanic() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}

func (s *Store) corrupt(format string, args ...any) error {
	return &CorruptError{Path: s.path, Err: fmt.Errorf(format, args...), Written: s.written.Load()}
}

// Run returns the record of run id, or ErrRunNotFound.
func (s *Store) Run(id string) (Run, error) {
	var run Run
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		run, err = s.getRun(tx, id)
		return err
	})
	return run, err
}

func (s *Store) getRun(tx *bolt.Tx, id string) (Run, error) {
	v := tx.Bucket(bucketRuns).Get([]byte(id))
	if v == nil {
		return Run{}, fmt.Errorf("run %q: %w", id, ErrRunNotFound)
	}
	return s.decodeRun(id, v)
}

func (s *Store) decodeRun(id string, v []byte) (Run, error) {
	var run Run
	if err := json.Unmarshal(v, &run); err != nil {
		return run, s.corrupt("record of run %q: %v", id, err)
	}
	return run, nil
}

// Runs returns every run, newest first.
func (s *Store) Runs() ([]Run, error) {
	var runs []Run
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			run, err := s.decodeRun(string(k), v)
			if err != nil {
				return err
			}
			runs = append(runs, run)
			return nil
		})
	})
	sort.SliceStable(runs, func(i, j int) bool {
		if !runs[i].Created.Equal(runs[j].Created) {
			return runs[i].Created.After(runs[j].Created)
		}
		return runs[i].ID > runs[j].ID
	})
	return runs, err
}

// LatestUnfinished returns the newest run that is running (or crashed),
// interrupted, parked or failed, or ErrNoRun.
func (s *Store) LatestUnfinished() (Run, error) {
	runs, err := s.Runs()
	if err != nil {
		return Run{}, err
	}
	for _, r := range runs {
		if r.Unfinished() {
			return r, nil
		}
	}
	return Run{}, ErrNoRun
}

// Nodes returns the node records of a run, sorted by id.
func (s *Store) Nodes(runID string) ([]NodeRecord, error) {
	var nodes []NodeRecord
	err := s.view(func(tx *bolt.Tx) error {
		if !runExists(tx, runID) {
			return fmt.Errorf("run %q: %w", runID, ErrRunNotFound)
		}
		b := tx.Bucket(bucketNodes).Bucket([]byte(runID))
		if b == nil {
			return nil
		}
		hint := 64
		if run, err := s.getRun(tx, runID); err == nil && run.Total > 0 {
			hint = run.Total
		}
		nodes = make([]NodeRecord, 0, hint)
		return b.ForEach(func(k, v []byte) error {
			n, err := unmarshalNode(v)
			if err != nil {
				return s.corrupt("record of node %q in run %q: %v", k, runID, err)
			}
			nodes = append(nodes, n)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return nodes, nil
}

// Node returns one node record of a run, or ErrRunNotFound or ErrNodeNotFound.
func (s *Store) Node(runID, nodeID string) (NodeRecord, error) {
	var n NodeRecord
	err := s.view(func(tx *bolt.Tx) error {
		if !runExists(tx, runID) {
			return fmt.Errorf("run %q: %w", runID, ErrRunNotFound)
		}
		var v []byte
		if b := tx.Bucket(bucketNodes).Bucket([]byte(runID)); b != nil {
			v = b.Get([]byte(nodeID))
		}
		if v == nil {
			return fmt.Errorf("node %q of run %q: %w", nodeID, runID, ErrNodeNotFound)
		}
		var err error
		if n, err = unmarshalNode(v); err != nil {
			return s.corrupt("record of node %q in run %q: %v", nodeID, runID, err)
		}
		return nil
	})
	return n, err
}

// Snapshot returns the graph file bytes stored for a run: taken when it
// was created, replaced by a Change with Snapshot (resume --graph). It
// fails with ErrTampered when the bytes do not match the run's graph hash,
// so that resume and retry never run a snapshot replaced outside reprise.
func (s *Store) Snapshot(runID string) ([]byte, error) {
	var snap []byte
	err := s.view(func(tx *bolt.Tx) error {
		run, err := s.getRun(tx, runID)
		if err != nil {
			return err
		}
		snap = append([]byte{}, tx.Bucket(bucketSnapshots).Get([]byte(runID))...)
		if sum := sha256Hex(snap); run.GraphHash != "" && sum != run.GraphHash {
			return fmt.Errorf("graph snapshot of run %q: its SHA-256 %.12s… is not the run's graph hash %.12s…: %w", runID, sum, run.GraphHash, ErrTampered)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}
