package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Verify checks a run against its journal, at three levels, and reports
// the first problem found in the VerifyReport (errors are for an unknown
// run or a file that cannot be read):
//
//   - chain: every entry's hash matches its bytes, its Seq its key and the
//     entry before plus one, its Prev the hash before, and the last one the
//     run's journal head. Any changed byte of any entry is caught, as is an
//     entry removed, added or moved, unless the whole chain and the head
//     were recomputed: only an anchor outside the file (package anchor)
//     catches that.
//   - records: each node record is the one its last journal entry recorded
//     (Entry.Record, a digest of the stored bytes; for entries written before
//     digests, its state), a node never journaled since the run was created
//     still has the record the run-created entry pinned, a node the journal
//     removed has none.
//   - snapshot: the graph snapshot's SHA-256 is the graph hash of the run
//     record and of the last journal entry that set one.
//   - run: the run record is the one the last journal entry that stored it
//     recorded (a copy of its bytes, the entry's data run_record: each
//     field that differs is named with both values); for a journal written
//     before run records were journaled, its status is the one the last
//     run entry gave (run-started, run-resumed: running; run-parked;
//     run-interrupted; run-finished: the status its message starts with).
//     A status, finish time, option, certification or clean-up edited in
//     the stored record is caught.
//
// HeadSeq and HeadHash give the end of the chain, for an anchor.
func (s *Store) Verify(runID string) (VerifyReport, error) {
	var rep VerifyReport
	err := s.view(func(tx *bolt.Tx) error {
		run, err := s.getRun(tx, runID)
		if err != nil {
			return err
		}
		rep, err = VerifyRun(run, boltRun{tx: tx, id: []byte(runID)})
		return err
	})
	return rep, err
}

// RunData is what VerifyRun reads of one run, all of it as of one moment
// (one read transaction, one etcd revision).
type RunData interface {
	// Journal calls fn with each stored entry in key order; seq is the
	// sequence number the entry's key gives (0 for a key that is none),
	// key the key itself, for messages.
	Journal(fn func(key []byte, seq uint64, stored []byte) error) error
	// Head returns the stored journal head (nil: none).
	Head() ([]byte, error)
	// Records calls fn with each stored node record.
	Records(fn func(id string, stored []byte) error) error
	// Snapshot returns the stored graph snapshot.
	Snapshot() ([]byte, error)
	// RunRecord returns the run record as stored.
	RunRecord() ([]byte, error)
}

// VerifyRun is Verify for any backend: it checks run against what data
// reads of it, at the levels Verify describes.
func VerifyRun(run Run, data RunData) (VerifyReport, error) {
	rep := VerifyReport{OK: true}
	v := &verifier{rep: &rep, last: make(map[string]*nodeLast, run.Total)}
	if err := v.chain(data); err != nil || !rep.OK {
		return rep, err
	}
	snap, err := data.Snapshot()
	if err != nil {
		return rep, err
	}
	v.snapshot(snap, run)
	if err := v.records(data); err != nil {
		return rep, err
	}
	stored, err := data.RunRecord()
	if err != nil {
		return rep, err
	}
	v.runRecord(stored, run)
	return rep, nil
}

// boltRun reads a run's data in a bbolt transaction.
type boltRun struct {
	tx *bolt.Tx
	id []byte
}

func (b boltRun) Journal(fn func(key []byte, seq uint64, stored []byte) error) error {
	jb := b.tx.Bucket(bucketJournal).Bucket(b.id)
	if jb == nil {
		return nil
	}
	return jb.ForEach(func(k, v []byte) error {
		var seq uint64
		if len(k) == 8 {
			seq = binary.BigEndian.Uint64(k)
		}
		return fn(k, seq, v)
	})
}

func (b boltRun) Head() ([]byte, error) { return b.tx.Bucket(bucketHeads).Get(b.id), nil }

func (b boltRun) Records(fn func(id string, stored []byte) error) error {
	nb := b.tx.Bucket(bucketNodes).Bucket(b.id)
	if nb == nil {
		return nil
	}
	return nb.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

func (b boltRun) Snapshot() ([]byte, error) { return b.tx.Bucket(bucketSnapshots).Get(b.id), nil }

func (b boltRun) RunRecord() ([]byte, error) { return b.tx.Bucket(bucketRuns).Get(b.id), nil }

// nodeLast is what the journal last said of a node.
type nodeLast struct {
	seq     uint64
	state   NodeState // "" if no entry gave one
	record  string    // Entry.Record of the last entry that had one
	removed bool      // the last entry is a node-removed one
}

type verifier struct {
	rep       *VerifyReport
	last      map[string]*nodeLast
	graphHash string
	graphSeq  uint64
	created   *Entry
	run       runLast
}

func (v *verifier) fail(level string, seq uint64, format string, args ...any) {
	if v.rep.OK {
		v.rep.OK, v.rep.Level, v.rep.FirstBad, v.rep.Problem = false, level, seq, fmt.Sprintf(format, args...)
	}
}

// chain walks the journal, checking the hash chain and gathering what the
// entries say of nodes and graph hashes.
func (v *verifier) chain(data RunData) error {
	var prevSeq uint64
	var prevBuf [hexLen]byte // the hash before, copied: data may reuse b
	var prevHash []byte
	err := data.Journal(func(k []byte, kseq uint64, b []byte) error {
		v.rep.Entries++
		want := prevSeq + 1
		if kseq != want {
			v.fail("chain", want, "entry key %x, want sequence %d", k, want)
			return errStop
		}
		seq, prev, hash, err := checkEntryBytes(b)
		switch {
		case err != nil:
			v.fail("chain", want, "entry %d: %v", want, err)
		case seq != want:
			v.fail("chain", want, "entry %d says it is entry %d", want, seq)
		case string(prev) != string(prevHash):
			v.fail("chain", want, "entry %d: previous hash %q, the entry before has %q", want, prev, prevHash)
		}
		if !v.rep.OK {
			return errStop
		}
		var e Entry
		if !parseEntryAs(b, &e, true) {
			// Not in the canonical form: what encoding/json reads.
			if err := decodeEntry(b, &e); err != nil {
				v.fail("chain", want, "entry %d: decode: %v", want, err)
				return errStop
			}
		}
		if e.Type == EntryRunFinished && e.Data[dataRunRecord] == "" {
			// Written before run records were journaled: its message
			// (left out by the light parse) gives the final status.
			var full Entry
			if decodeEntry(b, &full) == nil {
				e.Message = full.Message
			}
		}
		v.note(&e)
		prevSeq, prevHash = seq, prevBuf[:copy(prevBuf[:], hash)]
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if !v.rep.OK {
		return nil
	}
	var headSeq uint64
	var headHash string
	prevHashHex := string(prevHash)
	raw, err := data.Head()
	if err != nil {
		return err
	}
	if raw != nil {
		if headSeq, headHash, err = decodeHead(raw); err != nil {
			v.fail("chain", prevSeq+1, "%v", err)
			return nil
		}
	}
	if headSeq != prevSeq || headHash != prevHashHex {
		v.fail("chain", min(headSeq, prevSeq)+1, "the journal ends at entry %d (%.12s…) but its head says %d (%.12s…): entries are missing or were added",
			prevSeq, prevHashHex, headSeq, headHash)
	}
	v.rep.HeadSeq, v.rep.HeadHash = prevSeq, prevHashHex
	return nil
}

// note records what entry e says of its node and of the graph.
func (v *verifier) note(e *Entry) {
	if e.Type == EntryRunCreated && v.created == nil {
		v.created = e
	}
	v.run.note(e)
	if h, ok := e.Data[dataGraphHash]; ok {
		v.graphHash, v.graphSeq = h, e.Seq
	} else if e.Type == EntryGraphChanged && e.Data["hash"] != "" {
		v.graphHash, v.graphSeq = e.Data["hash"], e.Seq // written before graph_hash was stamped
	}
	if e.NodeID == "" || (e.State == "" && e.Record == "" && e.Type != EntryNodeRemoved) {
		return
	}
	l := v.last[e.NodeID]
	if l == nil {
		l = &nodeLast{}
		v.last[e.NodeID] = l
	}
	l.seq, l.removed = e.Seq, e.Type == EntryNodeRemoved
	if e.State != "" {
		l.state = e.State
	}
	if e.Record != "" {
		l.record = e.Record
	}
}

func (v *verifier) snapshot(snap []byte, run Run) {
	sum := sha256Hex(snap)
	if run.GraphHash != "" && sum != run.GraphHash {
		v.fail("snapshot", 0, "the graph snapshot's SHA-256 is %.12s…, but the run record's graph hash is %.12s…: the snapshot was replaced", sum, run.GraphHash)
	}
	if v.graphHash != "" && sum != v.graphHash {
		v.fail("snapshot", v.graphSeq, "the graph snapshot's SHA-256 is %.12s…, but journal entry %d recorded %.12s…: the snapshot was replaced", sum, v.graphSeq, v.graphHash)
	}
}

func (v *verifier) records(data RunData) error {
	// A run created with pinned records: every record is accounted for.
	strict := v.created != nil && v.created.Data[dataNodes] != ""
	var pinned map[string]string
	if strict && v.created.Data[dataInitialRecords] != "" {
		if err := json.Unmarshal([]byte(v.created.Data[dataInitialRecords]), &pinned); err != nil {
			v.fail("records", v.created.Seq, "entry %d: initial records: %v", v.created.Seq, err)
			return nil
		}
	}
	seen := map[string]bool{}
	err := data.Records(func(id string, b []byte) error {
		seen[id] = true
		v.rep.Records++
		v.record(id, b, strict, pinned)
		return nil
	})
	if err != nil || !strict {
		return err
	}
	for id, l := range v.last {
		if !seen[id] && !l.removed && l.record != "" {
			v.fail("records", l.seq, "node %q has no record, but journal entry %d recorded one%s", id, l.seq, said(l.state))
		}
	}
	return nil
}

func (v *verifier) record(id string, b []byte, strict bool, pinned map[string]string) {
	state := func() NodeState {
		n, err := unmarshalNode(b)
		if err != nil {
			return "undecodable"
		}
		return n.State
	}
	l := v.last[id]
	switch {
	case l != nil && l.removed:
		v.fail("records", l.seq, "node %q has a record (%s), but journal entry %d removed it", id, state(), l.seq)
	case l != nil && l.record != "":
		if recordDigest(b) != l.record {
			v.fail("records", l.seq, "the record of node %q (%s) is not the one journal entry %d recorded%s: it was changed outside reprise", id, state(), l.seq, said(l.state))
		} else if st, err := nodeState(b); l.state != "" && (err != nil || st != l.state) {
			// The record is the one the journal recorded (its digest): its
			// state is read without decoding the rest.
			st = state()
			v.fail("records", l.seq, "node %q is %s in its record, but journal entry %d left it %s", id, st, l.seq, l.state)
		}
	case l != nil && l.state != "":
		if st := state(); st != l.state {
			v.fail("records", l.seq, "node %q is %s in its record, but journal entry %d left it %s", id, st, l.seq, l.state)
		}
	case strict:
		if d, ok := pinned[id]; ok {
			if recordDigest(b) != d {
				v.fail("records", v.created.Seq, "the record of node %q (%s) is not the one the run was created with, and no entry changed it", id, state())
			}
		} else if !isPlainRecord(id, b) {
			v.fail("records", v.created.Seq, "node %q is %s in its record, but the journal never changed it from pending", id, state())
		}
	}
}

var errStop = errors.New("stop")

// said is " (STATE)" when the journal gave the state.
func said(st NodeState) string {
	if st == "" {
		return ""
	}
	return " (" + string(st) + ")"
}
