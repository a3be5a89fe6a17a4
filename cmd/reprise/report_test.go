package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

const reportGraphYAML = `version: 1
name: report-cmd
nodes:
  - id: ad
    kind: infrastructure
    plugin: noop
  - id: dpi
    kind: application
    criticality: vital
    plugin: noop
    depends_on: [ad]
  - id: lis
    kind: application
    criticality: vital
    plugin: noop
    depends_on: [ad]
  - id: reentry
    kind: data
    plugin: manual
    depends_on: [lis]
`

// mustReportState writes two runs into a state file through the store's
// API; the newer one has ad and dpi restored, lis failed, reentry blocked.
// It returns the path and the newer run's id.
func mustReportState(t *testing.T) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	var pending []state.NodeRecord
	for _, id := range []string{"ad", "dpi", "lis", "reentry"} {
		pending = append(pending, state.NodeRecord{ID: id, State: state.NodePending})
	}
	for i, id := range []string{"20261127-old", "20261128-new"} {
		run := state.Run{ID: id, GraphName: "report-cmd", GraphFile: "graph.yaml", Status: state.RunRunning,
			Created: t0.Add(time.Duration(i) * time.Hour)}
		if err := st.CreateRun(ctx, run, []byte(reportGraphYAML), pending); err != nil {
			t.Fatal(err)
		}
	}
	const runID = "20261128-new"
	at := func(m int) time.Time { return t0.Add(time.Hour + time.Duration(m)*time.Minute) }
	done := func(id string, s state.NodeState, from, to int, msg string) state.Change {
		rec := state.NodeRecord{ID: id, State: s, Attempts: 1, Started: at(from), Ended: at(to), LastError: msg,
			History: []state.Attempt{{N: 1, Started: at(from), Ended: at(to), Result: s, Error: msg}}}
		return state.Change{RunID: runID, Node: &rec, Entry: &state.Entry{Time: at(to), Type: state.EntryType(s), NodeID: id, State: s, Message: msg}}
	}
	changes := []state.Change{
		done("ad", state.NodeSucceeded, 0, 10, ""),
		done("dpi", state.NodeSucceeded, 10, 25, ""),
		done("lis", state.NodeFailed, 10, 12, "restore-lis: checksum mismatch | backup <2026-08-20>"),
		{RunID: runID, Node: &state.NodeRecord{ID: "reentry", State: state.NodeBlocked},
			Entry: &state.Entry{Time: at(12), Type: "blocked", NodeID: "reentry"}},
	}
	for _, c := range changes {
		if err := st.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return path, runID
}

func TestReportCmd(t *testing.T) {
	path, runID := mustReportState(t)
	out := filepath.Join(t.TempDir(), "report.html")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     string
		fileOutput string // file whose content must hold stdout's substrings instead
	}{
		{name: "newest run as markdown", args: []string{"report", "--state", path, "--tz", "UTC"},
			stdout: []string{"# Rebuild report: report-cmd", "**66 % of vital services back (2 of 3)**",
				"| **lis** | application | vital | 1 | 2026-11-28 09:12:00 | restore-lis: checksum mismatch \\| backup &lt;2026-08-20> | reentry |"}},
		{name: "json", args: []string{"report", runID, "--state", path, "--json"},
			stdout: []string{`"schema": "reprise.report/v1"`, `"id": "20261128-new"`, `"headline": "66 % of vital services back (2 of 3)"`}},
		{name: "older run by id", args: []string{"report", "20261127-old", "--state", path, "--format", "md"},
			stdout: []string{"**0 % of vital services back (0 of 3)**"}},
		{name: "html file", args: []string{"report", "--state", path, "-o", out}, stderr: "wrote " + out,
			fileOutput: out, stdout: []string{"<!DOCTYPE html>", `<svg id="graph-svg"`, `data-node="lis" data-state="failed"`}},
		{name: "unknown format", args: []string{"report", "--state", path, "--format", "pdf"}, code: exitUsage,
			stderr: `--format "pdf": want html, markdown, json, timeline (CSV) or timeline-json`},
		{name: "extension without format", args: []string{"report", "--state", path, "-o", filepath.Join(t.TempDir(), "r.txt")},
			code: exitUsage, stderr: "cannot tell the format"},
		{name: "json disagrees", args: []string{"report", "--state", path, "--json", "--format", "html"}, code: exitUsage,
			stderr: "--json and --format html disagree"},
		{name: "bad zone", args: []string{"report", "--state", path, "--tz", "Mars/Olympus"}, code: exitUsage, stderr: `--tz "Mars/Olympus"`},
		{name: "unknown run", args: []string{"report", "nope", "--state", path}, code: exitError,
			stderr: `run "nope": run not found (list them with ` + "`reprise runs`)"},
		{name: "no state file", args: []string{"report", "--state", filepath.Join(t.TempDir(), "none.db")}, code: exitError,
			stderr: "no state file at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runGraphsCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d, stderr with %q", code, stderr, tt.code, tt.stderr)
			}
			if tt.fileOutput != "" {
				data, err := os.ReadFile(tt.fileOutput)
				if err != nil {
					t.Fatal(err)
				}
				if stdout != "" {
					t.Errorf("stdout %q; want nothing when writing a file", stdout)
				}
				stdout = string(data)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".report.html.*")); len(matches) > 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

// While a run holds the state file, the report reads through the control
// socket of that process.
func TestReportCmdThroughSocket(t *testing.T) {
	path, runID := mustReportState(t)
	st, err := state.Open(path, state.Options{NoSync: true, Holder: "test run"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stdout, stderr, code := runGraphsCmd(t, "report", "--state", path, "--json")
	if code != exitError || !strings.Contains(stderr, "control socket") || stdout != "" {
		t.Errorf("without a socket: exit %d, stdout %q, stderr %q; want exit 1 naming the control socket and no report", code, stdout, stderr)
	}
	srv, err := control.Listen(control.SocketPath(path), control.Backend{Store: st, Live: func() string { return runID }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stdout, stderr, code = runGraphsCmd(t, "report", "--state", path, "--json")
	if code != exitOK {
		t.Fatalf("through the socket: exit %d, stderr %q", code, stderr)
	}
	var r struct {
		Run     struct{ ID string }
		Journal struct {
			OK      bool
			Entries int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Run.ID != runID || !r.Journal.OK || r.Journal.Entries != 5 {
		t.Errorf("report through the socket: %+v; want run %s, a verified journal of 5 entries", r, runID)
	}
}
