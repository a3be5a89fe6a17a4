package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// viewsGraphYAML: ad → (dpi, lis); lis → (lab, reentry); lab-ui links lab and dpi.
const viewsGraphYAML = `version: 1
name: views
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, estimate: 10m}
  - {id: dpi, kind: application, criticality: vital, plugin: noop, depends_on: [ad], estimate: 20m}
  - {id: lis, kind: application, criticality: vital, plugin: noop, depends_on: [ad], estimate: 20m}
  - {id: lab, kind: application, plugin: noop, depends_on: [lis], estimate: 5m}
  - {id: lab-ui, kind: interface, plugin: noop, between: [lab, dpi], estimate: 5m}
  - {id: reentry, kind: data, plugin: manual, depends_on: [lis]}
`

var viewsT0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func vat(min int) time.Time { return viewsT0.Add(time.Duration(min) * time.Minute) }

// mustViewsState writes one run per case into a fresh state file and
// returns its path.
func mustViewsState(t *testing.T, runs map[string]struct {
	run  state.Run
	recs []state.NodeRecord
}) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.db")
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, r := range runs {
		r.run.ID, r.run.GraphName, r.run.GraphFile, r.run.Created = id, "views", "graph.yaml", viewsT0
		r.run.Total = len(r.recs)
		if err := st.CreateRun(context.Background(), r.run, []byte(viewsGraphYAML), r.recs); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func attempt(n int, st state.NodeState, from, to int, msg string) state.Attempt {
	a := state.Attempt{N: n, Started: vat(from), Result: st, Error: msg}
	if to >= 0 {
		a.Ended = vat(to)
	}
	return a
}

// crashedRun is a run recorded as running whose process died at 08:30:
// ad done, dpi running since 08:12, the rest pending.
func crashedRun() struct {
	run  state.Run
	recs []state.NodeRecord
} {
	return struct {
		run  state.Run
		recs []state.NodeRecord
	}{state.Run{Status: state.RunRunning, Updated: vat(1)}, []state.NodeRecord{
		{ID: "ad", State: state.NodeSucceeded, Attempts: 1, Started: vat(1), Ended: vat(11), History: []state.Attempt{attempt(1, state.NodeSucceeded, 1, 11, "ok")}},
		{ID: "dpi", State: state.NodeRunning, Attempts: 1, Started: vat(12), History: []state.Attempt{attempt(1, "", 12, -1, "")}},
		{ID: "lis", State: state.NodeSucceeded, Attempts: 1, Started: vat(11), Ended: vat(30), History: []state.Attempt{attempt(1, state.NodeSucceeded, 11, 30, "")}},
		{ID: "lab", State: state.NodePending}, {ID: "lab-ui", State: state.NodePending}, {ID: "reentry", State: state.NodePending},
	}}
}

// TestInterruptedRunViews: a run whose process is gone shows as
// interrupted everywhere, with when it was last seen; its running node's
// elapsed time stops then; runs shows the last change.
func TestInterruptedRunViews(t *testing.T) {
	path := mustViewsState(t, map[string]struct {
		run  state.Run
		recs []state.NodeRecord
	}{"20261128-crashed": crashedRun()})
	lastSeen := vat(30).Local().Format(time.DateTime)

	out, stderr, code := runGraphsCmd(t, "status", "--state", path)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "status interrupted (its process is gone; last seen "+lastSeen) || strings.Contains(out, "status running") {
		t.Errorf("status does not say interrupted, last seen %s:\n%s", lastSeen, out)
	}
	if !strings.Contains(out, "running when the process went away:\n  dpi") || !strings.Contains(out, "attempt 1, 18m00s") {
		t.Errorf("status: dpi's elapsed time should stop at the last sighting (18m00s):\n%s", out)
	}

	out, _, _ = runGraphsCmd(t, "status", "--state", path, "--json")
	var s struct {
		Status   string    `json:"status"`
		Live     bool      `json:"live"`
		LastSeen time.Time `json:"last_seen"`
		Running  []struct {
			ID      string  `json:"id"`
			Elapsed float64 `json:"elapsed_seconds"`
		} `json:"running"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Status != "interrupted" || s.Live || !s.LastSeen.Equal(vat(30)) || len(s.Running) != 1 || s.Running[0].Elapsed != 18*60 {
		t.Errorf("status --json = %+v; want interrupted, last seen %v, dpi elapsed 1080 s", s, vat(30))
	}

	out, _, _ = runGraphsCmd(t, "runs", "--state", path)
	if !regexp.MustCompile(`20261128-crashed\s+interrupted \(process gone\)\s+views\s+6\s+\S+ \S+\s+` + regexp.QuoteMeta(lastSeen)).MatchString(out) {
		t.Errorf("runs does not show interrupted with the last change %s:\n%s", lastSeen, out)
	}
	out, _, _ = runGraphsCmd(t, "runs", "--state", path, "--json")
	var rs []struct {
		Status   string    `json:"status"`
		LastSeen time.Time `json:"last_seen"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || rs[0].Status != "interrupted" || !rs[0].LastSeen.Equal(vat(30)) {
		t.Errorf("runs --json = %+v (%v); want interrupted, last seen %v", rs, err, vat(30))
	}

	out, _, _ = runGraphsCmd(t, "report", "--state", path, "--json")
	var rep struct {
		Run struct {
			Status   string    `json:"status"`
			LastSeen time.Time `json:"last_seen"`
			End      time.Time `json:"end"`
		} `json:"run"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Run.Status != "interrupted" || !rep.Run.LastSeen.Equal(vat(30)) || !rep.Run.End.Equal(vat(30)) {
		t.Errorf("report run = %+v; want interrupted, last seen and timeline end %v", rep.Run, vat(30))
	}
	out, _, _ = runGraphsCmd(t, "report", "--state", path, "--format", "md", "--tz", "UTC")
	if !strings.Contains(out, "status **interrupted** · **its process is gone**, last seen 2026-11-28 08:30:00") {
		t.Errorf("markdown report lacks the interrupted status and last sighting:\n%s", out)
	}
}

// failedRun: lis failed with a two-line error, lab, lab-ui and reentry
// blocked by it, dpi marked done by hand, ad done with an output.
func failedRun() struct {
	run  state.Run
	recs []state.NodeRecord
} {
	const lisErr = "restore-lis: checksum mismatch on backup set 2026-08-19\nlast output: pg_restore: error: could not read block 4123"
	return struct {
		run  state.Run
		recs []state.NodeRecord
	}{state.Run{Status: state.RunFailed, Updated: vat(40)}, []state.NodeRecord{
		{ID: "ad", State: state.NodeSucceeded, Attempts: 1, Started: vat(0), Ended: vat(10),
			History: []state.Attempt{attempt(1, state.NodeSucceeded, 0, 10, "domain controller up")},
			Outputs: map[string]string{"url": "ldap://10.0.0.5", "token": "[redacted]"}},
		{ID: "dpi", State: state.NodeSucceeded, Attempts: 1, Started: vat(10), Ended: vat(35), MarkedBy: "m.durand", MarkReason: "restored by hand from the vendor image",
			History: []state.Attempt{attempt(1, state.NodeFailed, 10, 20, "exit status 2")}},
		{ID: "lis", State: state.NodeFailed, Attempts: 2, Started: vat(20), Ended: vat(30), LastError: lisErr,
			History: []state.Attempt{attempt(1, state.NodeFailed, 10, 15, "timeout"), attempt(2, state.NodeFailed, 20, 30, lisErr)}},
		{ID: "lab", State: state.NodeBlocked}, {ID: "lab-ui", State: state.NodeBlocked}, {ID: "reentry", State: state.NodeBlocked},
	}}
}

// TestStatusRootCausesFirst: the failed node comes first with its whole
// error, then its blocked descendants grouped under it.
func TestStatusRootCausesFirst(t *testing.T) {
	path := mustViewsState(t, map[string]struct {
		run  state.Run
		recs []state.NodeRecord
	}{"20261128-failed": failedRun()})
	out, stderr, code := runGraphsCmd(t, "status", "--state", path)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	want := "root causes:\n  lis  failed after 2 attempt(s) (vital)\n" +
		"      restore-lis: checksum mismatch on backup set 2026-08-19\n" +
		"      last output: pg_restore: error: could not read block 4123\n" +
		"blocked:\n  3 node(s) blocked by lis: lab, lab-ui, reentry\n"
	if !strings.Contains(out, want) {
		t.Errorf("status lacks the root causes first:\n%s\nwant:\n%s", out, want)
	}
	if i, j := strings.Index(out, "root causes:"), strings.Index(out, "by kind"); i < 0 || j < 0 || i > j {
		t.Errorf("root causes should come before the breakdowns:\n%s", out)
	}
}

// TestMarkedAndOutputsViews: a node marked done says by whom and why in
// status, log and every report format; outputs show in status --node and
// the report's node detail.
func TestMarkedAndOutputsViews(t *testing.T) {
	path := mustViewsState(t, map[string]struct {
		run  state.Run
		recs []state.NodeRecord
	}{"20261128-failed": failedRun()})
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := failedRun().recs[1]
	err = st.Apply(context.Background(), state.Change{RunID: "20261128-failed", Node: &rec,
		Entry: &state.Entry{Time: vat(35), Type: state.EntryMarked, NodeID: "dpi", By: "m.durand", Message: rec.MarkReason}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	const marked = "marked done by m.durand: restored by hand from the vendor image"
	for _, args := range [][]string{
		{"status"}, {"status", "--node", "dpi"}, {"log"},
		{"report", "--format", "md"}, {"report", "--format", "html"},
	} {
		out, stderr, code := runGraphsCmd(t, append(args, "--state", path)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if !strings.Contains(out, marked) {
			t.Errorf("%v lacks %q:\n%s", args, marked, out)
		}
	}
	out, _, _ := runGraphsCmd(t, "report", "--state", path, "--json")
	if !strings.Contains(out, `"marked_by": "m.durand"`) || !strings.Contains(out, `"mark_reason": "restored by hand from the vendor image"`) {
		t.Errorf("report JSON lacks who marked dpi and why:\n%s", out)
	}
	for _, args := range [][]string{{"status", "--node", "ad"}, {"report", "--format", "md"}, {"report", "--format", "html"}, {"report", "--json"}} {
		out, _, _ := runGraphsCmd(t, append(args, "--state", path)...)
		for _, want := range []string{"ldap://10.0.0.5", "[redacted]"} {
			if args[len(args)-1] == "md" {
				want = strings.NewReplacer("[", `\[`, "]", `\]`).Replace(want)
			}
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks ad's output %q:\n%s", args, want, out)
			}
		}
	}
	out, _, _ = runGraphsCmd(t, "status", "--state", path, "--node", "ad", "--json")
	var n struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil || n.Outputs["url"] != "ldap://10.0.0.5" {
		t.Errorf("status --node ad --json outputs = %v (%v)", n.Outputs, err)
	}
	// A mistyped node id gets the nearest one.
	_, stderr, code := runGraphsCmd(t, "status", "--state", path, "--node", "dpj")
	if code == 0 || !strings.Contains(stderr, `did you mean "dpi"?`) {
		t.Errorf("status --node dpj: exit %d, %s", code, stderr)
	}
}

// TestReportJSONAttemptMessage: a successful attempt's message is a
// message, not an error.
func TestReportJSONAttemptMessage(t *testing.T) {
	path := mustViewsState(t, map[string]struct {
		run  state.Run
		recs []state.NodeRecord
	}{"20261128-failed": failedRun()})
	out, _, _ := runGraphsCmd(t, "report", "--state", path, "--json")
	if !strings.Contains(out, `"message": "domain controller up"`) || strings.Contains(out, `"error": "domain controller up"`) {
		t.Errorf("report JSON: ad's successful attempt should carry its message under message:\n%s", out)
	}
}

// TestTargetSkippedNotDone: nodes outside a --target run are skipped, and
// no view counts them done.
func TestTargetSkippedNotDone(t *testing.T) {
	path := mustViewsState(t, map[string]struct {
		run  state.Run
		recs []state.NodeRecord
	}{"20261128-target": {state.Run{Status: state.RunSucceeded, Options: state.RunOptions{Targets: []string{"dpi"}}}, []state.NodeRecord{
		{ID: "ad", State: state.NodeSucceeded}, {ID: "dpi", State: state.NodeSucceeded},
		{ID: "lis", State: state.NodeSkipped, LastError: "not targeted"}, {ID: "lab", State: state.NodeSkipped, LastError: "not targeted"},
		{ID: "lab-ui", State: state.NodeSkipped, LastError: "not targeted"}, {ID: "reentry", State: state.NodeSkipped, LastError: "not targeted"},
	}}})
	out, _, _ := runGraphsCmd(t, "status", "--state", path)
	if !strings.Contains(out, "progress  2/6 done (33.3%)") || !strings.Contains(out, "skipped 4 (outside the target)") {
		t.Errorf("status counts skipped nodes as done:\n%s", out)
	}
	out, _, _ = runGraphsCmd(t, "report", "--state", path, "--json")
	var rep struct {
		Summary struct {
			Restored int `json:"restored"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Summary.Restored != 2 {
		t.Errorf("report restored = %d (%v); want 2 (skipped nodes are not back)", rep.Summary.Restored, err)
	}
}

// TestBrokenJournalViews: a journal entry damaged on disk (it no longer
// decodes) leaves report and log working: everything that can be read is
// shown under a banner, and they exit 3.
func TestBrokenJournalViews(t *testing.T) {
	path := mustViewsState(t, map[string]struct {
		run  state.Run
		recs []state.NodeRecord
	}{"20261128-failed": failedRun()})
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range []string{"first-entry-kept", "needle-damaged", "after-the-damage"} {
		err := st.Apply(context.Background(), state.Change{RunID: "20261128-failed",
			Entry: &state.Entry{Time: vat(40 + i), Type: "note", By: "ops", Message: msg}})
		if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := []byte(`,"msg":"needle-damaged"`)
	if bytes.Count(b, needle) == 0 {
		t.Fatal("needle not found in the state file")
	}
	for i := bytes.Index(b, needle); i >= 0; i = bytes.Index(b, needle) { // bbolt may keep a stale copy too
		b[i] ^= 0x01 // the comma: the entry no longer decodes
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	banner := regexp.MustCompile(`journal broken at entry 3\b`)
	for _, tc := range []struct {
		args []string
		top  string // what the output starts with
	}{
		{[]string{"report", "--format", "md"}, "> **⚠ journal broken at entry 3"},
		{[]string{"report", "--format", "html"}, ""},
		{[]string{"report", "--json"}, ""},
		{[]string{"log"}, "!! journal broken at entry 3"},
	} {
		out, stderr, code := runGraphsCmd(t, append(tc.args, "--state", path)...)
		if code != exitBrokenJournal || !banner.MatchString(stderr) {
			t.Errorf("%v: exit %d, stderr %q; want exit 3 naming entry 3", tc.args, code, stderr)
		}
		if !banner.MatchString(out) || !strings.HasPrefix(out, tc.top) {
			t.Errorf("%v: output lacks the banner on top:\n%.600s", tc.args, out)
		}
		for _, want := range []string{"first-entry-kept", "after-the-damage"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks entry %q: everything readable must show", tc.args, want)
			}
		}
	}
	out, _, _ := runGraphsCmd(t, "report", "--state", path, "--json")
	if !strings.Contains(out, `"broken": "journal broken at entry 3`) {
		t.Errorf("report JSON lacks journal.broken:\n%.2000s", out)
	}
	out, _, _ = runGraphsCmd(t, "report", "--state", path, "--format", "html")
	if !regexp.MustCompile(`<body>\s*<header>\s*<div class="broken" id="journal-broken" role="alert"><b>⚠ journal broken at entry 3`).MatchString(out) {
		t.Errorf("HTML report lacks the banner at the top of the page")
	}
}
