package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DataRunRecord is the data key of the journal entry written with a run
// record (by CreateRun, or with a change that stores one): the record as
// stored, byte for byte, so that Verify can hold the stored record to the
// journal as it holds node records to their digests, and name each field
// that differs with both values. A run record is a few hundred bytes,
// written a few times a run (start, finish, certifications, clean-up).
// The store sets it; one set by a caller is dropped.
const DataRunRecord = "run_record"

const dataRunRecord = DataRunRecord

// encodeRun encodes a run record as every backend stores it.
func encodeRun(run *Run) ([]byte, error) {
	b, err := json.Marshal(run)
	if err != nil {
		return nil, fmt.Errorf("encode run %q: %w", run.ID, err)
	}
	return b, nil
}

// stampRun records in e the run record stored with it.
func stampRun(e *Entry, stored []byte) {
	if e.Data == nil {
		e.Data = map[string]string{}
	}
	e.Data[dataRunRecord] = string(stored)
}

// impliedStatus is the run status an entry written before run records were
// journaled leaves the run in, as the engine wrote it: "" when the entry
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
// journaled came with a run record: the engine stored one with these.
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
	record    string    // dataRunRecord of the last entry that had one
	recordSeq uint64    // its entry
	status    RunStatus // the status the journal last gave ("": it did not say)
	statusSeq uint64    // the entry that gave it (0: none)
	// resetAfter: a node was reset after statusSeq by an entry without a
	// record: the engine then made a finished run interrupted.
	resetAfter bool
}

// note records what entry e says of the run record.
func (l *runLast) note(e *Entry) {
	if r := e.Data[dataRunRecord]; r != "" {
		var run struct{ Status RunStatus }
		_ = json.Unmarshal([]byte(r), &run) // one that does not decode differs from any stored record
		l.writeSeq, l.record, l.recordSeq = e.Seq, r, e.Seq
		l.status, l.statusSeq, l.resetAfter = run.Status, e.Seq, false
		return
	}
	// Written before run records were journaled (or by such a reprise).
	if rewritesRun(e.Type) {
		l.writeSeq = e.Seq
	}
	if st, ok := impliedStatus(e); ok {
		l.status, l.statusSeq, l.resetAfter = st, e.Seq, false
	} else if e.Type == EntryReset && e.NodeID != "" {
		l.resetAfter = true
	}
}

// runRecord checks the stored run record against the journal: against the
// copy the last entry that stored a record holds, when it holds one; else
// (a journal written before run records were journaled) its status against
// the last entry that gave one.
func (v *verifier) runRecord(stored []byte, run Run) {
	l := &v.run
	switch {
	case l.recordSeq > 0 && l.recordSeq >= l.writeSeq:
		if string(stored) == l.record {
			return
		}
		diffs := runDiffs(stored, []byte(l.record))
		switch {
		case run.Status != l.status:
			also := ""
			if len(diffs) > 1 {
				also = "; also " + strings.Join(diffs[1:], "; ")
			}
			v.fail("run", l.recordSeq, "run %q is %s in its record (field status), but journal entry %d left it %s%s: the record was changed outside reprise",
				run.ID, run.Status, l.recordSeq, l.status, also)
		case len(diffs) == 0:
			v.fail("run", l.recordSeq, "the record of run %q is not byte for byte the one journal entry %d recorded (the same fields, encoded otherwise): it was changed outside reprise",
				run.ID, l.recordSeq)
		default:
			v.fail("run", l.recordSeq, "the record of run %q is not the one journal entry %d recorded: %s: it was changed outside reprise",
				run.ID, l.recordSeq, strings.Join(diffs, "; "))
		}
	case l.statusSeq > 0 && l.status != "" && run.Status != l.status:
		if l.resetAfter && run.Status == RunInterrupted && (l.status == RunSucceeded || l.status == RunFailed) {
			return // retry reset a node of the finished run
		}
		v.fail("run", l.statusSeq, "run %q is %s in its record (field status), but journal entry %d left it %s: the record was changed outside reprise",
			run.ID, run.Status, l.statusSeq, l.status)
	}
}

// runDiffs lists the top-level fields of two encoded run records that
// differ, status first, then in name order: "field F is X in the record,
// Y in the entry".
func runDiffs(stored, journaled []byte) []string {
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal(stored, &a)
	_ = json.Unmarshal(journaled, &b)
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	sorted := slices.SortedFunc(maps.Keys(names), func(x, y string) int {
		if (x == "status") != (y == "status") {
			if x == "status" {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	var out []string
	for _, k := range sorted {
		if x, y := compact(a[k]), compact(b[k]); !bytes.Equal(x, y) {
			out = append(out, fmt.Sprintf("field %s is %s in the record, %s in the entry", k, shownValue(x), shownValue(y)))
		}
	}
	return out
}

// compact is v without insignificant spaces (nil stays nil).
func compact(v json.RawMessage) json.RawMessage {
	if v == nil {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}

// shownValue is a field's JSON value for a message: "absent" when there
// is none, cut after 80 bytes.
func shownValue(v json.RawMessage) string {
	switch {
	case v == nil:
		return "absent"
	case len(v) > 80:
		return string(v[:80]) + "…"
	}
	return string(v)
}
