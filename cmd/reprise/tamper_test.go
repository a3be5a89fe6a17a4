package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/reprise-si/reprise/engine/state"
)

// tamperGraph: a fails, b depends on a (and would leave b.done), c is
// independent. An attacker wants b to run, or a command of theirs.
const tamperGraph = `version: 1
name: tamper
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, "exit 1"]}}
  - {id: b, kind: application, plugin: exec, depends_on: [a], with: {restore: [sh, -c, "touch b.done"]}}
  - {id: c, kind: application, plugin: exec, with: {restore: [sh, -c, "true"]}}
`

// mustFailedRun runs tamperGraph (a fails, b blocked) with --anchor and
// returns the run id.
func mustFailedRun(t *testing.T, d *cliDir, anchorDest string) string {
	t.Helper()
	g := d.write("graph.yaml", tamperGraph)
	d.mustRun(exitFailedNodes, "run", "--quiet", "--anchor", anchorDest, g)
	return d.status().Run
}

// editState edits the closed state file with bbolt, as anyone who can
// write it can.
func editState(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// forgeRecord turns node id's stored record from failed to succeeded (its
// state is a length-prefixed string after tag 2) and returns the new bytes.
func forgeRecord(t *testing.T, tx *bolt.Tx, runID, id string) []byte {
	t.Helper()
	nb := tx.Bucket([]byte("nodes")).Bucket([]byte(runID))
	rec := nb.Get([]byte(id))
	forged := bytes.Replace(rec, []byte("\x02\x06failed"), []byte("\x02\x09succeeded"), 1)
	if bytes.Equal(forged, rec) {
		t.Fatalf("record of %s holds no failed state: %q", id, rec)
	}
	if err := nb.Put([]byte(id), forged); err != nil {
		t.Fatal(err)
	}
	return forged
}

// rechainAll rewrites a run's journal as someone who read doc.go would:
// edit each entry (false drops it and the ones after), then every hash
// (SHA-256 of the JSON with "hash":"" last), link and the head again.
func rechainAll(t *testing.T, tx *bolt.Tx, runID string, edit func(*state.Entry) bool) {
	t.Helper()
	jb := tx.Bucket([]byte("journal")).Bucket([]byte(runID))
	var keys [][]byte
	_ = jb.ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil })
	prev, last := "", []byte(nil)
	dropping := false
	for _, k := range keys {
		var e state.Entry
		if err := json.Unmarshal(jb.Get(k), &e); err != nil {
			t.Fatal(err)
		}
		if dropping || !edit(&e) {
			dropping = true
			_ = jb.Delete(k)
			continue
		}
		e.Prev, e.Hash = prev, ""
		canon, _ := json.Marshal(&e)
		sum := sha256.Sum256(canon)
		e.Hash = hex.EncodeToString(sum[:])
		stored, _ := json.Marshal(&e)
		_ = jb.Put(k, stored)
		prev, last = e.Hash, k
	}
	head := append(bytes.Clone(last), sum32(prev)...)
	if err := tx.Bucket([]byte("heads")).Put([]byte(runID), head); err != nil {
		t.Fatal(err)
	}
}

func sum32(h string) []byte { b, _ := hex.DecodeString(h); return b }

// TestTamperNodeRecord: a's record set to succeeded by hand: resume and
// retry refuse (b would run), log --verify names the records level.
func TestTamperNodeRecord(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	runID := mustFailedRun(t, d, d.path("anchors.jsonl"))
	editState(t, d.path("reprise.db"), func(tx *bolt.Tx) error { forgeRecord(t, tx, runID, "a"); return nil })
	for _, args := range [][]string{{"resume", "--quiet", runID}, {"retry", "--quiet", runID, "c"}} {
		_, stderr, code := d.run(args...)
		if code != exitError || !strings.Contains(stderr, "(records)") {
			t.Errorf("reprise %s after a forged record: exit %d, stderr %q; want a refusal (records)", args[0], code, stderr)
		}
	}
	if _, err := os.Stat(d.path("b.done")); err == nil {
		t.Fatal("b ran: a forged record made resume skip a failed node")
	}
	_, stderr, code := d.run("log", "--verify", runID)
	if code != exitError || !strings.Contains(stderr, "(records)") || !strings.Contains(stderr, `"a"`) {
		t.Errorf("log --verify: exit %d, stderr %q; want the records level naming a", code, stderr)
	}
}

// TestTamperRunRecord: the failed run's record set to succeeded by hand (a
// report made to look good): log --verify names the run level, the field
// and both statuses and exits 1; the report carries the problem on top and
// exits 3; resume and retry refuse.
func TestTamperRunRecord(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	runID := mustFailedRun(t, d, d.path("anchors.jsonl"))
	if out := d.mustRun(0, "log", "--verify", runID); !strings.Contains(out, "run record as the journal left it") {
		t.Fatalf("log --verify before tampering:\n%s", out)
	}
	if out := d.mustRun(0, "log", runID); strings.Contains(out, "run_record") {
		t.Errorf("log shows the journaled run records:\n%s", out)
	}
	if out := d.mustRun(0, "log", "--json", runID); !strings.Contains(out, `"run_record":"{\"id\":`) {
		t.Errorf("log --json does not show the journaled run records:\n%s", out)
	}
	editState(t, d.path("reprise.db"), func(tx *bolt.Tx) error {
		rb := tx.Bucket([]byte("runs"))
		forged := bytes.Replace(rb.Get([]byte(runID)), []byte(`"status":"failed"`), []byte(`"status":"succeeded"`), 1)
		if !bytes.Contains(forged, []byte(`"status":"succeeded"`)) {
			t.Fatalf("run record holds no failed status: %s", rb.Get([]byte(runID)))
		}
		return rb.Put([]byte(runID), forged)
	})
	_, stderr, code := d.run("log", "--verify", runID)
	if code != exitError || !strings.Contains(stderr, "(run)") ||
		!strings.Contains(stderr, fmt.Sprintf("run %q is succeeded in its record (field status), but journal entry", runID)) ||
		!strings.Contains(stderr, "left it failed") {
		t.Errorf("log --verify: exit %d, stderr %q; want the run level naming both statuses", code, stderr)
	}
	// The report made to look good says it cannot be trusted.
	out, stderr, code := d.run("report", "--format", "json", runID)
	if code != exitBrokenJournal || !strings.Contains(stderr, "is succeeded in its record (field status)") ||
		!strings.Contains(out, `"broken": "journal broken at entry`) {
		t.Errorf("report: exit %d, stderr %q; want the forged status flagged (exit %d)\n%.1500s", code, stderr, exitBrokenJournal, out)
	}
	for _, args := range [][]string{{"resume", "--quiet", runID}, {"retry", "--quiet", runID, "a"}} {
		_, stderr, code := d.run(args...)
		if code != exitError || !strings.Contains(stderr, "(run)") {
			t.Errorf("reprise %s after a forged run record: exit %d, stderr %q; want a refusal (run)", args[0], code, stderr)
		}
	}
}

// TestTamperSnapshot: a replaced graph snapshot (with the run record's
// hash fixed too) never runs: resume and retry refuse, log --verify names
// the snapshot level.
func TestTamperSnapshot(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	runID := mustFailedRun(t, d, d.path("anchors.jsonl"))
	evil := strings.ReplaceAll(tamperGraph, `"exit 1"`, `"touch injected"`)
	editState(t, d.path("reprise.db"), func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("snapshots")).Put([]byte(runID), []byte(evil)); err != nil {
			return err
		}
		var run state.Run
		_ = json.Unmarshal(tx.Bucket([]byte("runs")).Get([]byte(runID)), &run)
		sum := sha256.Sum256([]byte(evil))
		run.GraphHash = hex.EncodeToString(sum[:])
		b, _ := json.Marshal(run)
		return tx.Bucket([]byte("runs")).Put([]byte(runID), b)
	})
	for _, args := range [][]string{{"resume", "--quiet", runID}, {"retry", "--quiet", runID, "a"}} {
		_, stderr, code := d.run(args...)
		if code != exitError || !strings.Contains(stderr, "(snapshot)") {
			t.Errorf("reprise %s after a replaced snapshot: exit %d, stderr %q; want a refusal (snapshot)", args[0], code, stderr)
		}
	}
	if _, err := os.Stat(d.path("injected")); err == nil {
		t.Fatal("the injected command ran")
	}
	if _, stderr, code := d.run("log", "--verify", runID); code != exitError || !strings.Contains(stderr, "(snapshot)") {
		t.Errorf("log --verify: exit %d, stderr %q; want the snapshot level", code, stderr)
	}
}

// anchorHook is a webhook that keeps what it is POSTed and gives it back
// on GET, as a log service would.
func anchorHook(t *testing.T) string {
	var mu sync.Mutex
	var lines []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			lines = append(append(lines, b...), '\n')
			return
		}
		_, _ = w.Write(lines)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/anchors"
}

// TestTamperWholeChain: a's failed entry made a success, its record
// forged to match, every hash and the head recomputed. Nothing inside the
// file can tell; the anchors can: the JSON log's, the anchor file's, the
// webhook's. With the JSON log cleaned too, only --anchor catches it.
func TestTamperWholeChain(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	hook := anchorHook(t)
	g := d.write("graph.yaml", tamperGraph)
	d.mustRun(exitFailedNodes, "run", "--quiet", "--anchor", d.path("anchors.jsonl"), g)
	runID := d.status().Run
	// Anchor the head at the webhook too (a resume would; log stays read-only).
	d.mustRun(exitFailedNodes, "resume", "--quiet", "--anchor", hook, runID)
	d.mustRun(exitFailedNodes, "resume", "--quiet", "--anchor", d.path("anchors.jsonl"), runID)
	if out := d.mustRun(0, "log", "--verify", "--anchor", hook, runID); !strings.Contains(out, "agree with the journal") {
		t.Fatalf("log --verify before tampering:\n%s", out)
	}
	// A saved JSON report holds the head too.
	d.mustRun(0, "report", "--format", "json", "-o", d.path("report.json"), runID)
	editState(t, d.path("reprise.db"), func(tx *bolt.Tx) error {
		forged := forgeRecord(t, tx, runID, "a")
		sum := sha256.Sum256(forged)
		rechainAll(t, tx, runID, func(e *state.Entry) bool {
			if e.NodeID == "a" && e.State == state.NodeFailed {
				e.State, e.Type, e.Message = state.NodeSucceeded, state.EntrySucceeded, "restored"
				e.Record = hex.EncodeToString(sum[:16])
			}
			return true
		})
		return nil
	})
	// Caught from the JSON log beside the file.
	if _, stderr, code := d.run("log", "--verify", runID); code != exitError || !strings.Contains(stderr, "(anchor)") {
		t.Errorf("log --verify with the JSON log's anchors: exit %d, stderr %q; want the anchor level", code, stderr)
	}
	// The attacker cleans the JSON log too: the file alone passes…
	if err := os.Remove(d.path("reprise.db.log")); err != nil {
		t.Fatal(err)
	}
	if out := d.mustRun(0, "log", "--verify", runID); !strings.Contains(out, "none found") {
		t.Errorf("log --verify with no anchor:\n%s", out)
	}
	// …but not against the anchors kept elsewhere.
	for _, src := range []string{d.path("anchors.jsonl"), hook, d.path("report.json")} {
		if _, stderr, code := d.run("log", "--verify", "--anchor", src, runID); code != exitError || !strings.Contains(stderr, "journal was rewritten") {
			t.Errorf("log --verify --anchor %s: exit %d, stderr %q; want the rewrite caught", src, code, stderr)
		}
	}
	if _, stderr, code := d.run("resume", "--quiet", "--anchor", d.path("anchors.jsonl"), runID); code != exitError || !strings.Contains(stderr, "anchors") {
		t.Errorf("resume --anchor after a rewrite: exit %d, stderr %q; want a refusal", code, stderr)
	}
	if _, err := os.Stat(d.path("b.done")); err == nil {
		t.Fatal("b ran after the journal was rewritten")
	}
}

// TestTamperDropLastEntry: the last entry (run-finished) dropped and the
// head fixed: the run record, still failed, contradicts the journal. With
// the journal made to look older than run record digests and the record
// made running too, nothing in the file does: only an anchor tells.
func TestTamperDropLastEntry(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	runID := mustFailedRun(t, d, d.path("anchors.jsonl"))
	var last uint64
	editState(t, d.path("reprise.db"), func(tx *bolt.Tx) error {
		_ = tx.Bucket([]byte("journal")).Bucket([]byte(runID)).ForEach(func(k, _ []byte) error { last++; return nil })
		n := uint64(0)
		rechainAll(t, tx, runID, func(e *state.Entry) bool { n++; return n < last })
		return nil
	})
	if _, stderr, code := d.run("log", "--verify", runID); code != exitError || !strings.Contains(stderr, "(run)") {
		t.Errorf("log --verify after dropping entry %d: exit %d, stderr %q; want the run level", last, code, stderr)
	}
	editState(t, d.path("reprise.db"), func(tx *bolt.Tx) error {
		rechainAll(t, tx, runID, func(e *state.Entry) bool {
			delete(e.Data, "run_record")
			return true
		})
		rb := tx.Bucket([]byte("runs"))
		return rb.Put([]byte(runID), bytes.Replace(rb.Get([]byte(runID)), []byte(`"status":"failed"`), []byte(`"status":"running"`), 1))
	})
	if err := os.Remove(d.path("reprise.db.log")); err != nil {
		t.Fatal(err)
	}
	d.mustRun(0, "log", "--verify", runID) // nothing in the file contradicts it
	_, stderr, code := d.run("log", "--verify", "--anchor", d.path("anchors.jsonl"), runID)
	if code != exitError || !strings.Contains(stderr, "entries were removed") {
		t.Errorf("log --verify --anchor after dropping entry %d: exit %d, stderr %q", last, code, stderr)
	}
}
