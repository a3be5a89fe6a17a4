package state

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The journal entry written with a run record (by CreateRun, or by a
// change that stores one) carries its digest and status, so that Verify
// can hold the stored record to the journal as it holds node records:
// dataRunRecord is the first 16 bytes, in hex, of the SHA-256 of the
// record as stored (as Entry.Record for a node), dataRunStatus its status.
const (
	dataRunRecord = "run_record"
	dataRunStatus = "run_status"
)

// encodeRun encodes a run record as every backend stores it.
func encodeRun(run *Run) ([]byte, error) {
	b, err := json.Marshal(run)
	if err != nil {
		return nil, fmt.Errorf("encode run %q: %w", run.ID, err)
	}
	return b, nil
}

// stampRun records in e the digest and status of the run record stored
// with it.
func stampRun(e *Entry, status RunStatus, stored []byte) {
	if e.Data == nil {
		e.Data = map[string]string{}
	}
	e.Data[dataRunRecord] = recordDigest(stored)
	e.Data[dataRunStatus] = string(status)
}

// impliedStatus is the run status an entry written before run records were
// digested leaves the run in, as the engine wrote it: "" when the entry
// does not say (ok false: the entry does not change the status).
func impliedStatus(e *Entry) (st RunStatus, ok bool) {
	switch e.Type {
	case EntryRunStarted, EntryRunResumed:
		return RunRunning, true
	case EntryRunParked:
		return RunParked, true
	case EntryRunInterrupted:
		return RunInterrupted, true
	case EntryRunFinished:
		// Its message starts with the final status: "failed: 2/3 done, …".
		word, _, _ := strings.Cut(e.Message, ":")
		if s := RunStatus(word); s == RunSucceeded || s == RunFailed {
			return s, true
		}
		return "", true
	}
	return "", false
}

// rewritesRun reports whether an entry written before run records were
// digested came with a run record: the engine stored one with these.
func rewritesRun(t EntryType) bool {
	switch t {
	case EntryRunCreated, EntryRunStarted, EntryRunResumed, EntryRunFinished, EntryRunParked, EntryRunInterrupted,
		EntryCleanedUp, EntryCertified, EntryGraphChanged, EntrySnapshotReplaced, EntryRunUpdated:
		return true
	}
	return false
}

// runLast is what the journal last said of the run record.
type runLast struct {
	writeSeq  uint64    // the last entry that came with a run record
	digest    string    // dataRunRecord of the last entry that had one
	digestSeq uint64    // its entry
	status    RunStatus // the status the journal last gave ("": it did not say)
	statusSeq uint64    // the entry that gave it (0: none)
	// resetAfter: a node was reset after statusSeq by an entry without a
	// digest: the engine then made a finished run interrupted.
	resetAfter bool
}

// note records what entry e says of the run record.
func (l *runLast) note(e *Entry) {
	if d := e.Data[dataRunRecord]; d != "" {
		l.writeSeq, l.digest, l.digestSeq = e.Seq, d, e.Seq
		l.status, l.statusSeq, l.resetAfter = RunStatus(e.Data[dataRunStatus]), e.Seq, false
		return
	}
	// Written before run records were digested (or by such a reprise).
	if rewritesRun(e.Type) {
		l.writeSeq = e.Seq
	}
	if st, ok := impliedStatus(e); ok {
		l.status, l.statusSeq, l.resetAfter = st, e.Seq, false
	} else if e.Type == EntryReset && e.NodeID != "" {
		l.resetAfter = true
	}
}

// runRecord checks the stored run record against the journal: its digest
// against the last entry that stored a record, when that entry has one;
// else (a journal written before digests) its status against the last
// entry that gave one.
func (v *verifier) runRecord(stored []byte, run Run) {
	l := &v.run
	switch {
	case l.digestSeq > 0 && l.digestSeq >= l.writeSeq:
		digestOK := recordDigest(stored) == l.digest
		switch {
		case run.Status != l.status:
			v.fail("run", l.digestSeq, "run %q is %s in its record (field status), but journal entry %d left it %s: the record was changed outside reprise",
				run.ID, run.Status, l.digestSeq, l.status)
		case !digestOK:
			v.fail("run", l.digestSeq, "the record of run %q (status %s) is not the one journal entry %d recorded: a field other than its status was changed outside reprise",
				run.ID, run.Status, l.digestSeq)
		}
	case l.statusSeq > 0 && l.status != "" && run.Status != l.status:
		if l.resetAfter && run.Status == RunInterrupted && (l.status == RunSucceeded || l.status == RunFailed) {
			return // retry reset a node of the finished run
		}
		v.fail("run", l.statusSeq, "run %q is %s in its record (field status), but journal entry %d left it %s: the record was changed outside reprise",
			run.ID, run.Status, l.statusSeq, l.status)
	}
}
