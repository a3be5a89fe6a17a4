package state

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// runStep is one change an engine makes to run r1 (a run of nodes a, b),
// as the engine writes it.
type runStep func(t *testing.T, s *Store)

// withRun applies a change of r1's run record, with its entry.
func withRun(edit func(*Run), e Entry) runStep {
	return func(t *testing.T, s *Store) {
		t.Helper()
		run, err := s.Run("r1")
		if err != nil {
			t.Fatal(err)
		}
		edit(&run)
		run.Updated = run.Updated.Add(time.Second)
		if err := s.Apply(context.Background(), Change{RunID: "r1", Run: &run, Entry: &e}); err != nil {
			t.Fatal(err)
		}
	}
}

func started() runStep {
	return withRun(func(r *Run) { r.Status = RunRunning; r.Finished = time.Time{} }, Entry{Type: EntryRunStarted, Message: "run of g (2 nodes) started"})
}

func resumed() runStep {
	return withRun(func(r *Run) { r.Status = RunRunning; r.Finished = time.Time{} }, Entry{Type: EntryRunResumed, Message: "resumed"})
}

// finished ends the run in st, with the entry the engine writes for it.
func finished(st RunStatus) runStep {
	typ := EntryRunFinished
	switch st {
	case RunParked:
		typ = EntryRunParked
	case RunInterrupted:
		typ = EntryRunInterrupted
	}
	return withRun(func(r *Run) {
		r.Status = st
		if st == RunSucceeded || st == RunFailed {
			r.Finished = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
		}
	}, Entry{Type: typ, Message: fmt.Sprintf("%s: 1/2 done", st)})
}

func nodeDone(id string, st NodeState) runStep {
	return func(t *testing.T, s *Store) {
		t.Helper()
		if err := s.Apply(context.Background(), Change{RunID: "r1", Node: &NodeRecord{ID: id, State: st, Attempts: 1},
			Entry: &Entry{Type: EntryType(st), NodeID: id, State: st, Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
	}
}

// retryReset is `retry` on a finished run: the node back to pending and
// the run interrupted, in one change journaled by the node's reset entry.
func retryReset(t *testing.T, s *Store) {
	t.Helper()
	run, _ := s.Run("r1")
	run.Status, run.Finished = RunInterrupted, time.Time{}
	if err := s.Apply(context.Background(), Change{RunID: "r1", Run: &run, Node: &NodeRecord{ID: "b", State: NodePending},
		Entry: &Entry{Type: EntryReset, NodeID: "b", State: NodePending}}); err != nil {
		t.Fatal(err)
	}
}

// lifecycles are runs ending in every status, as the engine leaves them.
var lifecycles = []struct {
	name   string
	steps  []runStep
	status RunStatus
}{
	{"created only", nil, RunRunning},
	{"running (crashed)", []runStep{started(), nodeDone("a", NodeSucceeded)}, RunRunning},
	{"succeeded", []runStep{started(), nodeDone("a", NodeSucceeded), nodeDone("b", NodeSucceeded), finished(RunSucceeded)}, RunSucceeded},
	{"failed", []runStep{started(), nodeDone("a", NodeSucceeded), nodeDone("b", NodeFailed), finished(RunFailed)}, RunFailed},
	{"parked", []runStep{started(), nodeDone("a", NodeSucceeded), nodeDone("b", NodeWaiting), finished(RunParked)}, RunParked},
	{"interrupted", []runStep{started(), nodeDone("a", NodeSucceeded), finished(RunInterrupted)}, RunInterrupted},
	{"failed then resumed to success", []runStep{started(), nodeDone("b", NodeFailed), finished(RunFailed), resumed(),
		nodeDone("b", NodeSucceeded), finished(RunSucceeded)}, RunSucceeded},
	{"failed then retry reset", []runStep{started(), nodeDone("b", NodeFailed), finished(RunFailed), retryReset}, RunInterrupted},
	{"drill cleaned up", []runStep{started(), finished(RunSucceeded), withRun(func(r *Run) {
		r.Cleanup = &Cleanup{By: "alice", At: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC), Note: "vm deleted"}
	}, Entry{Type: EntryCleanedUp, By: "alice", Message: "vm deleted"})}, RunSucceeded},
	{"zone certified", []runStep{started(), finished(RunParked), withRun(func(r *Run) {
		r.Certified = append(r.Certified, Certification{Zone: "core", By: "bob", Comment: "scanned"})
	}, Entry{Type: EntryCertified, By: "bob", Data: map[string]string{"zone": "core"}})}, RunParked},
	{"graph changed", []runStep{started(), finished(RunFailed), func(t *testing.T, s *Store) {
		if err := s.Apply(context.Background(), Change{RunID: "r1", Snapshot: []byte("version: 1\nname: g2\n"),
			Entry: &Entry{Type: EntryGraphChanged}}); err != nil {
			t.Fatal(err)
		}
	}, resumed()}, RunRunning},
	{"run record changed without an entry", []runStep{started(), func(t *testing.T, s *Store) {
		run, _ := s.Run("r1")
		run.Status = RunParked
		if err := s.Apply(context.Background(), Change{RunID: "r1", Run: &run}); err != nil {
			t.Fatal(err)
		}
	}}, RunParked},
}

// mustLifecycle returns a closed state file holding run r1 after steps.
func mustLifecycle(t *testing.T, steps []runStep) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := Run{ID: "r1", GraphName: "g", GraphFile: "g.yaml", Options: RunOptions{Parallelism: 4}}
	if err := s.CreateRun(context.Background(), run, []byte("version: 1\nname: g\n"),
		[]NodeRecord{{ID: "a", State: NodePending}, {ID: "b", State: NodePending}}); err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		step(t, s)
	}
	return path
}

// asOldJournal rewrites r1's journal as a reprise from before run records
// were journaled wrote it: no run_record.
func asOldJournal(tx *bolt.Tx) error {
	return rechain(tx, 1, func(e *Entry) bool {
		delete(e.Data, dataRunRecord)
		return true
	})
}

func verifyFile(t *testing.T, path string) VerifyReport {
	t.Helper()
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.Verify("r1")
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestVerifyRunRecordUntouched: a run left in any status by the engine's
// own writes verifies clean, with journals of today and of before run
// records were journaled.
func TestVerifyRunRecordUntouched(t *testing.T) {
	for _, lc := range lifecycles {
		for _, old := range []bool{false, true} {
			if old && lc.name == "run record changed without an entry" {
				continue // the engine never did that before run-updated
			}
			t.Run(fmt.Sprintf("%s old=%v", lc.name, old), func(t *testing.T) {
				path := mustLifecycle(t, lc.steps)
				if old {
					tamper(t, path, asOldJournal)
				}
				rep := verifyFile(t, path)
				if !rep.OK {
					t.Fatalf("Verify = %+v, want OK", rep)
				}
				s, _ := Open(path, Options{ReadOnly: true})
				run, _ := s.Run("r1")
				s.Close()
				if run.Status != lc.status {
					t.Errorf("status %s, want %s", run.Status, lc.status)
				}
			})
		}
	}
}

// editRun rewrites r1's stored run record behind the journal's back
// (indented when indent).
func editRun(edit func(*Run), indent bool) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		var run Run
		if err := json.Unmarshal(tx.Bucket(bucketRuns).Get([]byte("r1")), &run); err != nil {
			return err
		}
		edit(&run)
		b, _ := json.Marshal(&run)
		if indent {
			b, _ = json.MarshalIndent(&run, "", " ")
		}
		return tx.Bucket(bucketRuns).Put([]byte("r1"), b)
	}
}

// TestVerifyRunRecordTampered: an edit of the stored run record is
// reported at the run level, naming the run, the field, both values and
// the entry.
func TestVerifyRunRecordTampered(t *testing.T) {
	failedRun := lifecycles[3].steps // started, a succeeded, b failed, finished failed: entries 1-5
	tests := []struct {
		name  string
		old   bool
		edit  func(*Run)
		wants []string
	}{
		{"status failed to succeeded", false, func(r *Run) { r.Status = RunSucceeded },
			[]string{`run "r1" is succeeded in its record (field status), but journal entry 5 left it failed`}},
		{"status failed to succeeded, old journal", true, func(r *Run) { r.Status = RunSucceeded },
			[]string{`run "r1" is succeeded in its record (field status), but journal entry 5 left it failed`}},
		{"status failed to interrupted, old journal", true, func(r *Run) { r.Status = RunInterrupted },
			[]string{`run "r1" is interrupted in its record (field status), but journal entry 5 left it failed`}},
		{"status and finish time", false, func(r *Run) { r.Status = RunSucceeded; r.Finished = r.Finished.Add(-time.Hour) },
			[]string{`run "r1" is succeeded in its record (field status), but journal entry 5 left it failed; ` +
				`also field finished is "2026-12-02T05:00:00Z" in the record, "2026-12-02T06:00:00Z" in the entry: the record was changed outside reprise`}},
		{"finish time", false, func(r *Run) { r.Finished = r.Finished.Add(-time.Hour) },
			[]string{`the record of run "r1" is not the one journal entry 5 recorded: field finished is "2026-12-02T05:00:00Z" in the record, "2026-12-02T06:00:00Z" in the entry: it was changed outside reprise`}},
		{"dry run option", false, func(r *Run) { r.Options.DryRun = true },
			[]string{`field options is {"parallelism":4,"dry_run":true} in the record, {"parallelism":4} in the entry`}},
		{"zone certified", false, func(r *Run) { r.Certified = []Certification{{Zone: "core", By: "mallory"}} },
			[]string{`journal entry 5`, `field certified is [{"zone":"core","by":"mallory",`, `in the record, absent in the entry`}},
		{"drill cleaned up", false, func(r *Run) { r.Cleanup = &Cleanup{By: "mallory"} },
			[]string{`journal entry 5`, `field cleanup is {"by":"mallory",`, "absent in the entry"}},
		{"same fields, encoded otherwise", false, func(r *Run) {},
			[]string{`the record of run "r1" is not byte for byte the one journal entry 5 recorded (the same fields, encoded otherwise)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := mustLifecycle(t, failedRun)
			if tt.old {
				tamper(t, path, asOldJournal)
			}
			if rep := verifyFile(t, path); !rep.OK {
				t.Fatalf("Verify before the edit = %+v", rep)
			}
			tamper(t, path, editRun(tt.edit, strings.HasPrefix(tt.name, "same fields")))
			rep := verifyFile(t, path)
			if rep.OK || rep.Level != "run" || rep.FirstBad != 5 {
				t.Fatalf("Verify = %+v, want a run problem at entry 5", rep)
			}
			for _, w := range tt.wants {
				if !strings.Contains(rep.Problem, w) {
					t.Errorf("problem %q does not say %q", rep.Problem, w)
				}
			}
		})
	}
}

// TestRunRecordJournaled: every entry that comes with a run record carries
// a copy of it, a caller cannot set one, and a run record
// stored without an entry gets a run-updated one.
func TestRunRecordJournaled(t *testing.T) {
	path := mustLifecycle(t, lifecycles[len(lifecycles)-1].steps)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A caller's run_record on an entry without a run record is dropped.
	if err := s.Apply(context.Background(), Change{RunID: "r1", Entry: &Entry{Type: EntryNotified,
		Data: map[string]string{dataRunRecord: `{"id":"r1","status":"succeeded"}`, "target": "x"}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = s.Journal("r1", 0, func(e Entry) error {
		var run Run
		if r := e.Data[dataRunRecord]; r != "" {
			if err := json.Unmarshal([]byte(r), &run); err != nil {
				t.Errorf("entry %d: run record %q: %v", e.Seq, r, err)
			}
		}
		got = append(got, fmt.Sprintf("%s run=%s status=%s", e.Type, run.ID, run.Status))
		return nil
	})
	want := []string{"run-created run=r1 status=running", "run-started run=r1 status=running",
		"run-updated run=r1 status=parked", "notified run= status="}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep, err := s.Verify("r1"); err != nil || !rep.OK {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}
