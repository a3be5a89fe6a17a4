package etcdstate_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// finishAs moves run id's record to status st with the entry the engine
// writes for it.
func finishAs(t *testing.T, st state.Backend, id string, status state.RunStatus) {
	t.Helper()
	run, err := st.Run(id)
	if err != nil {
		t.Fatal(err)
	}
	typ := map[state.RunStatus]state.EntryType{state.RunRunning: state.EntryRunResumed, state.RunParked: state.EntryRunParked,
		state.RunInterrupted: state.EntryRunInterrupted, state.RunFailed: state.EntryRunFinished, state.RunSucceeded: state.EntryRunFinished}[status]
	run.Status, run.Updated, run.Finished = status, run.Updated.Add(time.Minute), time.Time{}
	if status == state.RunFailed || status == state.RunSucceeded {
		run.Finished = run.Updated
	}
	if err := st.Apply(context.Background(), state.Change{RunID: id, Run: &run,
		Entry: &state.Entry{Time: run.Updated, Type: typ, Message: string(status) + ": 3/4 done"}}); err != nil {
		t.Fatal(err)
	}
}

// TestRunRecordVerifiedOnBoth: a run left in any status verifies clean on
// both backends, with the same journal hashes; its record's status edited
// behind the journal's back is reported at the run level on both.
func TestRunRecordVerifiedOnBoth(t *testing.T) {
	statuses := []state.RunStatus{state.RunRunning, state.RunSucceeded, state.RunFailed, state.RunParked, state.RunInterrupted}
	for _, status := range statuses {
		t.Run(string(status), func(t *testing.T) {
			et, _ := mustEtcd(t, nil, etcdstate.Options{})
			f := mustFile(t)
			heads := map[string]string{}
			for name, st := range map[string]state.Backend{"bbolt": f, "etcd": et} {
				createRun(t, st, "r1", 3)
				script(t, st, "r1", 3)
				finishAs(t, st, "r1", status)
				rep, err := st.Verify("r1")
				if err != nil || !rep.OK {
					t.Fatalf("%s: Verify = %+v, %v", name, rep, err)
				}
				heads[name] = rep.HeadHash
			}
			if heads["bbolt"] != heads["etcd"] {
				t.Errorf("journal heads differ: bbolt %s, etcd %s", heads["bbolt"], heads["etcd"])
			}
		})
	}
}

// TestRunRecordTamperedOnEtcd: a failed run made succeeded in etcd is
// reported with the run, the field, both values and the entry.
func TestRunRecordTamperedOnEtcd(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 3)
	script(t, st, "r1", 3)          // entries 1-8
	finishAs(t, st, "r1", "failed") // 9
	k := u.Key("runs/rec/r1")
	var run state.Run
	if err := json.Unmarshal(keysUnder(t, cli, u)[k], &run); err != nil {
		t.Fatal(err)
	}
	run.Status = state.RunSucceeded
	b, _ := json.Marshal(&run)
	put(t, cli, k, b)
	rep, err := st.Verify("r1")
	if err != nil {
		t.Fatal(err)
	}
	want := `run "r1" is succeeded in its record (field status), but journal entry 9 left it failed`
	if rep.OK || rep.Level != "run" || rep.FirstBad != 9 || !strings.Contains(rep.Problem, want) {
		t.Fatalf("Verify = %+v, want a run problem: %s", rep, want)
	}
}

// asOldCopy rewrites a copied run's journal as a reprise from before run
// records were journaled wrote it: no run_record.
func asOldCopy(t *testing.T, c *state.RunCopy) {
	t.Helper()
	prev := ""
	for i := range c.Entries {
		e, err := state.OpenEntry(c.Entries[i].Stored)
		if err != nil {
			t.Fatal(err)
		}
		delete(e.Data, "run_record")
		stored, hash, err := state.SealEntry(&e, e.Seq, prev)
		if err != nil {
			t.Fatal(err)
		}
		c.Entries[i].Stored, prev = stored, hash
	}
	c.Head = state.EncodeHead(c.Entries[len(c.Entries)-1].Seq, prev)
}

// TestOldJournalOnEtcd: a run whose journal was written before run records
// were journaled, copied to etcd, verifies clean there; its status edited
// is caught from the status its last run entry gave.
func TestOldJournalOnEtcd(t *testing.T) {
	cli := rawClient(t)
	f := mustFile(t)
	createRun(t, f, "r1", 3)
	script(t, f, "r1", 3)
	finishAs(t, f, "r1", state.RunFailed) // entry 9
	c, err := f.ExportRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	asOldCopy(t, c)
	if strings.Contains(string(c.Entries[8].Stored), "run_record") {
		t.Fatalf("entry 9 still has a digest: %s", c.Entries[8].Stored)
	}
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	if err := st.ImportRun(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if rep, err := st.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("Verify of the old journal = %+v, %v", rep, err)
	}
	k := u.Key("runs/rec/r1")
	var run state.Run
	_ = json.Unmarshal(keysUnder(t, cli, u)[k], &run)
	run.Status = state.RunSucceeded
	b, _ := json.Marshal(&run)
	put(t, cli, k, b)
	rep, err := st.Verify("r1")
	want := `run "r1" is succeeded in its record (field status), but journal entry 9 left it failed`
	if err != nil || rep.OK || rep.Level != "run" || !strings.Contains(rep.Problem, want) {
		t.Fatalf("Verify = %+v, %v; want a run problem: %s", rep, err, want)
	}
}

// TestCopyKeepsRunRecordBytes: a run record in a form this reprise would
// not write (a field a newer one added), journaled as such, crosses from a
// file to etcd and back byte for byte, and verifies on every side.
func TestCopyKeepsRunRecordBytes(t *testing.T) {
	f := mustFile(t)
	createRun(t, f, "r1", 2)
	finishAs(t, f, "r1", state.RunFailed) // entry 2
	c, err := f.ExportRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	// As a newer reprise would have stored and journaled it.
	c.Record = []byte(strings.Replace(string(c.Record), `{"id":"r1",`, `{"id":"r1","future":{"x":1},`, 1))
	prev := ""
	for i := range c.Entries {
		e, err := state.OpenEntry(c.Entries[i].Stored)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(c.Entries)-1 {
			e.Data["run_record"] = string(c.Record)
		}
		stored, hash, err := state.SealEntry(&e, e.Seq, prev)
		if err != nil {
			t.Fatal(err)
		}
		c.Entries[i].Stored, prev = stored, hash
	}
	c.Head = state.EncodeHead(c.Entries[len(c.Entries)-1].Seq, prev)
	if rep, err := c.Verify(); err != nil || !rep.OK {
		t.Fatalf("Verify of the copy = %+v, %v", rep, err)
	}
	et, _ := mustEtcd(t, nil, etcdstate.Options{})
	if err := et.ImportRun(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	back, err := et.ExportRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	f2 := mustFile(t)
	if err := f2.ImportRun(context.Background(), back); err != nil {
		t.Fatal(err)
	}
	again, err := f2.ExportRun("r1")
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]state.Backend{"etcd": et, "file": f2} {
		if rep, err := st.Verify("r1"); err != nil || !rep.OK {
			t.Errorf("%s: Verify = %+v, %v", name, rep, err)
		}
	}
	if string(back.Record) != string(c.Record) || string(again.Record) != string(c.Record) {
		t.Errorf("run record after the copies:\netcd %s\nfile %s\nwant %s", back.Record, again.Record, c.Record)
	}
}
