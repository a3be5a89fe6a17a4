package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/reprise-si/reprise/engine/anchor"
	"github.com/reprise-si/reprise/engine/state"
)

// liveCLIGraph keeps a `run --wait` going (slow waits for the file "go")
// while operators act on it from other processes: tape fails until "fixed"
// exists, vault fails for good, gate waits, records has a point taken after
// the incident, and care waits for core's certification.
const liveCLIGraph = `version: 1
name: live
defaults: {retries: 0}
zones:
  - {id: core, title: Trusted core}
  - {id: care, title: Care}
incident: {detected: '2026-11-30T03:00:00Z'}
scanners:
  entropy: {type: entropy, threshold: 0.5}
nodes:
  - {id: slow, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'while [ ! -f go ]; do sleep 0.05; done']}}
  - {id: ad, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo ad >> ran.txt']}}
  - {id: tape, kind: data, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, zone: core, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
  - {id: vault, kind: data, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo vault >> ran.txt; exit 1']}}
  - {id: vault-check, kind: application, plugin: exec, zone: core, depends_on: [vault], with: {restore: [sh, -c, 'echo vault-check >> ran.txt']}}
  - {id: gate, kind: data, plugin: manual, zone: core, depends_on: [ad]}
  - id: records
    kind: data
    plugin: exec
    zone: care
    scan: [entropy]
    restore_points:
      - {id: r1, time: '2026-11-29T02:00:00Z', path: points/r1}
      - {id: r2, time: '2026-11-30T05:00:00Z', path: points/r2}
    with: {restore: [sh, -c, 'echo "records $REPRISE_RESTORE_POINT" >> ran.txt']}
  - {id: dpi, kind: application, plugin: exec, zone: care, depends_on: [ad, records], with: {restore: [sh, -c, 'echo dpi >> ran.txt']}}
`

func (d *cliDir) nodeStates(runID string) map[string]string {
	d.t.Helper()
	m := map[string]string{}
	for _, n := range d.status(runID).Nodes {
		m[n.ID] = n.State
	}
	return m
}

func (d *cliDir) waitNode(runID, node, want string) {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := d.nodeStates(runID)[node]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("node %s: %s, want %s", node, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCLIActionsOnLiveRun: mark, retry, approve, restore-point and certify,
// each from its own process, reach a `run --wait` going on in another
// through its control socket; the run goes on from each (the retried node
// runs again, the marked node's dependent starts, the certified zone's
// nodes start, from the point chosen) and ends succeeded, and the journal
// names each operator.
func TestCLIActionsOnLiveRun(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	for _, p := range []string{"r1", "r2"} {
		if err := os.MkdirAll(d.path("points/"+p), 0o755); err != nil {
			t.Fatal(err)
		}
		d.write("points/"+p+"/notes.txt", "patient notes, plain text\n")
	}
	g := d.write("graph.yaml", liveCLIGraph)
	cmd := d.command("run", "--wait", "--quiet", g)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ended := false
	defer func() {
		if !ended {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	var runID string
	for deadline := time.Now().Add(60 * time.Second); runID == ""; {
		if out, _, code := d.run("status", "--json"); code == 0 && strings.Contains(out, `"live": true`) {
			var s statusJSON
			_ = json.Unmarshal([]byte(out), &s)
			runID = s.Run
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never showed live\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.waitNode(runID, "vault", "failed")
	d.waitNode(runID, "tape", "failed")
	d.waitNode(runID, "gate", "waiting")

	if _, stderr, code := d.run("mark", runID, "slow", "--done", "--reason", "x", "--by", "ann"); code != exitError || !strings.Contains(stderr, "node is running") {
		t.Errorf("mark of a running node: exit %d, %s", code, stderr)
	}
	out := d.mustRun(0, "restore-point", runID, "records", "--use", "r2", "--by", "Dr. Lefèvre", "--reason", "r2 checked by hand")
	if !strings.Contains(out, "is going on") {
		t.Errorf("restore-point on a live run says:\n%s", out)
	}
	d.write("fixed", "")
	if out := d.mustRun(0, "retry", runID, "tape", "--by", "carol"); !strings.Contains(out, "they run again now") {
		t.Errorf("retry on a live run says:\n%s", out)
	}
	d.waitNode(runID, "db", "succeeded")
	if out := d.mustRun(0, "mark", runID, "vault", "--done", "--reason", "restored from the offsite copy", "--by", "dave"); !strings.Contains(out, "start now") {
		t.Errorf("mark on a live run says:\n%s", out)
	}
	d.waitNode(runID, "vault-check", "succeeded")
	d.mustRun(0, "approve", runID, "gate", "--by", "erin", "--comment", "signed")
	d.write("go", "")
	d.waitNode(runID, "slow", "succeeded")
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		ended = true
		t.Fatalf("run --wait ended at the zone gate (%v) instead of waiting for the certification\n%s", err, errb.String())
	default:
	}
	if out := d.mustRun(0, "certify", runID, "core", "--by", "frank", "--comment", "AD and the vault checked clean"); !strings.Contains(out, "next zone start now") {
		t.Errorf("certify on a live run says:\n%s", out)
	}
	select {
	case err := <-done:
		ended = true
		if err != nil {
			t.Fatalf("run --wait: %v\n%s", err, errb.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run --wait did not finish after core was certified")
	}
	if got := strings.Fields(strings.ReplaceAll(readFile(t, d.path("ran.txt")), "records ", "records:")); !strings.Contains(strings.Join(got, " "), "records:r2") ||
		strings.Count(strings.Join(got, " "), "tape") != 2 {
		t.Errorf("ran %v: want tape twice and records from r2", got)
	}
	log := d.mustRun(0, "log", runID, "--json")
	by := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e struct {
			Type, Node, By string
			Data           map[string]string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log --json line %q: %v", line, err)
		}
		if e.By != "" {
			by[e.Type+" "+e.Node+e.Data["zone"]] = e.By
		}
	}
	for k, want := range map[string]string{"point-override records": "Dr. Lefèvre", "reset tape": "carol",
		"marked vault": "dave", "approved gate": "erin", "zone-certified core": "frank"} {
		if by[k] != want {
			t.Errorf("journal %q by %q, want %q (all: %v)", k, by[k], want, by)
		}
	}
	d.mustRun(0, "log", runID, "--verify")
}

// TestActionsCheckAndAnchor calls the actions without cobra: on a stopped
// run each is refused when the state file does not match its journal (as
// resume is), and otherwise writes the new journal head to --anchor and to
// the JSON log, which then vouch for it.
func TestActionsCheckAndAnchor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newCLIDir(t)
	anchors := d.path("anchors.jsonl")
	runID := mustFailedRun(t, d, anchors)
	statePath := d.path("reprise.db")

	out, err := runMark(ctx, markOptions{State: statePath, Anchor: anchors, Run: runID, Node: "a", By: "carol", Reason: "restored by hand"})
	if err != nil || out.Live || out.Socket || out.AnchorErr != nil {
		t.Fatalf("mark: %+v, %v", out, err)
	}
	st, err := state.Open(statePath, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, err := st.Head(runID)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{anchors, statePath + ".log"} {
		as, err := anchor.Read(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 0 || as[len(as)-1].Seq != seq || as[len(as)-1].Hash != hash {
			t.Errorf("anchors in %s: %+v; want the head after the mark (%d %s) last", filepath.Base(src), as, seq, hash)
		}
	}

	// A record changed by hand: every action refuses, nothing is written.
	d = newCLIDir(t)
	runID = mustFailedRun(t, d, d.path("anchors.jsonl"))
	statePath = d.path("reprise.db")
	editState(t, statePath, func(tx *bolt.Tx) error { forgeRecord(t, tx, runID, "a"); return nil })
	_ = os.Remove(statePath + ".log")
	calls := map[string]func() error{
		"mark": func() error {
			_, err := runMark(ctx, markOptions{State: statePath, Run: runID, Node: "b", By: "mallory", Reason: "x"})
			return err
		},
		"approve": func() error {
			_, err := runApprove(ctx, approveOptions{State: statePath, Run: runID, Node: "b", By: "mallory"})
			return err
		},
		"certify": func() error {
			_, err := runCertify(ctx, certifyOptions{State: statePath, Run: runID, Zone: "core", By: "mallory", Comment: "x"})
			return err
		},
		"cleanup": func() error {
			_, err := runCleanup(ctx, cleanupOptions{State: statePath, Run: runID, By: "mallory", Note: "x"})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, state.ErrTampered) || !strings.Contains(err.Error(), "(records)") {
			t.Errorf("%s on a forged record: %v, want a refusal (records)", name, err)
		}
	}
	if _, err := os.Stat(statePath + ".log"); err == nil {
		t.Errorf("a refused action wrote the log")
	}
}
