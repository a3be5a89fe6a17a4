package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
)

// mustDirectFailedRun runs directGraph through runRun (2 of 4 nodes done, broken
// failed, report blocked) and returns the folder and the run's id.
func mustDirectFailedRun(t *testing.T) (directDir, string) {
	t.Helper()
	d := mustDirectDir(t, directGraph)
	out, err := runRun(context.Background(), runOptions{sessionOptions: d.session(), File: d.graph}, (&bufs{}).stdio())
	if err != nil || out.Result.Status != state.RunFailed {
		t.Fatalf("run: %+v, %v", out.Result, err)
	}
	return d, out.Result.RunID
}

// TestViewsDirect reads one failed run (2 of 4 nodes done, one failure
// blocking one node) through status, report, graph --run, runs and log's
// runX functions, without cobra.
func TestViewsDirect(t *testing.T) {
	d, runID := mustDirectFailedRun(t)
	t.Run("status", func(t *testing.T) { testStatusDirect(t, d, runID) })
	t.Run("report", func(t *testing.T) { testReportDirect(t, d, runID) })
	t.Run("graph of the run", func(t *testing.T) { testGraphOfRunDirect(t, d) })
	t.Run("runs and log", func(t *testing.T) { testRunsAndLogDirect(t, d, runID) }) // last: removes the JSON log
}

// testStatusDirect reads where the run stands through runStatus: its
// numbers, as status prints them; --node, and a mistyped node id.
func testStatusDirect(t *testing.T, d directDir, runID string) {
	ctx := context.Background()
	st, err := runStatus(ctx, statusOptions{StatePath: d.state})
	if err != nil {
		t.Fatal(err)
	}
	s := st.Model.Summary()
	if s.Run != runID || s.Status != state.RunFailed || s.Total != 4 || s.Done != 2 || s.Percent != 50 {
		t.Errorf("summary: run %s %s, %d/%d (%v%%); want %s failed, 2/4 (50%%)", s.Run, s.Status, s.Done, s.Total, s.Percent, runID)
	}
	if s.Counts[state.NodeSucceeded] != 2 || s.Counts[state.NodeFailed] != 1 || s.Counts[state.NodeBlocked] != 1 {
		t.Errorf("counts %v", s.Counts)
	}
	if len(s.RootCauses) != 1 || s.RootCauses[0].ID != "broken" || strings.Join(s.RootCauses[0].Blocks, ",") != "report" {
		t.Errorf("root causes %+v; want broken blocking report", s.RootCauses)
	}
	if st.Crisis == nil {
		t.Fatal("no crisis view")
	}
	var out bytes.Buffer
	printStatus(&out, st.Model)
	for _, want := range []string{"run " + runID + "  graph lab  status failed\n", "progress  2/4 done (50.0%)", "root causes:\n  broken  failed after 1 attempt(s)", "  1 node(s) blocked by broken: report\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}

	n, err := runStatus(ctx, statusOptions{StatePath: d.state, RunID: runID, Node: "broken"})
	if err != nil || n.Node == nil || n.Node.State != state.NodeFailed || n.Node.Attempts != 1 || !strings.Contains(n.Node.LastError, "down") {
		t.Fatalf("status --node broken: %+v, %v", n.Node, err)
	}
	if _, err := runStatus(ctx, statusOptions{StatePath: d.state, Node: "brokn"}); err == nil || !strings.Contains(err.Error(), `has no node "brokn" (did you mean "broken"?)`) {
		t.Errorf("mistyped node: %v", err)
	}
	if _, err := runStatus(ctx, statusOptions{StatePath: d.state, RunID: "nope"}); err == nil || !strings.Contains(err.Error(), "list them with `reprise runs`") {
		t.Errorf("unknown run: %v", err)
	}
	if _, err := runStatus(ctx, statusOptions{StatePath: filepath.Join(d.dir, "none.db")}); err == nil || !strings.Contains(err.Error(), "nothing has run here yet") {
		t.Errorf("no state file: %v", err)
	}
}

// testReportDirect builds reports through runReport: the numbers agree
// with status's, the format follows the options, bad options are usage
// errors, and a report file is written whole.
func testReportDirect(t *testing.T, d directDir, runID string) {
	ctx := context.Background()
	res, err := runReport(ctx, reportOptions{StatePath: d.state, JSON: true}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	if res.Format != "json" || r.Run.ID != runID || r.Summary.Total != 4 || r.Summary.Restored != 2 || r.Summary.Percent != 50 || r.Journal.Broken != "" {
		t.Errorf("report: format %s, run %s, %d/%d (%v%%), broken %q; want json, %s, 2/4 (50%%)", res.Format, r.Run.ID, r.Summary.Restored, r.Summary.Total, r.Summary.Percent, r.Journal.Broken, runID)
	}
	st, err := runStatus(ctx, statusOptions{StatePath: d.state, RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Model.Summary(); s.Done != r.Summary.Restored || s.Percent != r.Summary.Percent {
		t.Errorf("status %d (%v%%), report %d (%v%%)", s.Done, s.Percent, r.Summary.Restored, r.Summary.Percent)
	}

	tests := []struct {
		name   string
		opts   reportOptions
		format string
		code   int
	}{
		{"stdout is markdown", reportOptions{}, "markdown", exitOK},
		{"from the extension", reportOptions{Output: "x.html"}, "html", exitOK},
		{"timeline alias", reportOptions{Format: "csv", FormatSet: true}, "timeline", exitOK},
		{"json and format disagree", reportOptions{JSON: true, Format: "html", FormatSet: true}, "", exitUsage},
		{"unknown format", reportOptions{Format: "pdf", FormatSet: true}, "", exitUsage},
		{"unknown extension", reportOptions{Output: "x.pdf"}, "", exitUsage},
		{"bad zone", reportOptions{TZ: "Mars/Olympus"}, "", exitUsage},
		{"unknown run", reportOptions{RunID: "nope"}, "", exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.StatePath = d.state
			res, err := runReport(ctx, tt.opts, &bytes.Buffer{})
			if code := exitOf(err); code != tt.code || res.Format != tt.format {
				t.Errorf("exit %d (%v), format %q; want exit %d, format %q", code, err, res.Format, tt.code, tt.format)
			}
		})
	}

	path := filepath.Join(d.dir, "rebuild.html")
	res, err = runReport(ctx, reportOptions{StatePath: d.state, Output: path}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeReport(&bytes.Buffer{}, path, res.Format, res.Report); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte(runID)) {
		t.Errorf("rebuild.html: %v\n%.200s", err, b)
	}
}

// testRunsAndLogDirect lists runs through runRuns and reads and checks
// the journal through runLog.
func testRunsAndLogDirect(t *testing.T, d directDir, runID string) {
	ctx := context.Background()
	rows, err := runRuns(ctx, runsOptions{StatePath: d.state})
	if err != nil || len(rows) != 1 || rows[0].ID != runID || rows[0].Status != state.RunFailed || rows[0].Live || rows[0].LastSeen.IsZero() {
		t.Fatalf("runs: %+v, %v", rows, err)
	}
	var table bytes.Buffer
	if err := printRuns(&table, rows); err != nil || !strings.HasPrefix(table.String(), "RUN ") || strings.Contains(table.String(), "DRILL") {
		t.Errorf("runs table (%v):\n%s", err, table.String())
	}
	if latest, err := runRuns(ctx, runsOptions{StatePath: d.state, Latest: true}); err != nil || latest[0].ID != runID {
		t.Errorf("runs --latest: %+v, %v", latest, err)
	}

	all, err := runLog(ctx, logOptions{StatePath: d.state})
	if err != nil || all.RunID != runID || all.Broken != "" || len(all.Journal) == 0 {
		t.Fatalf("log: %d entries, broken %q, %v", len(all.Journal), all.Broken, err)
	}
	one, err := runLog(ctx, logOptions{StatePath: d.state, RunID: runID, Node: "broken"})
	if err != nil || len(one.Journal) == 0 || len(one.Journal) >= len(all.Journal) {
		t.Fatalf("log --node broken: %d of %d entries, %v", len(one.Journal), len(all.Journal), err)
	}
	for _, e := range one.Journal {
		if e.NodeID != "broken" {
			t.Errorf("log --node broken holds %+v", e)
		}
	}
	v, err := runLog(ctx, logOptions{StatePath: d.state, Verify: true})
	if err != nil || v.Verify == nil || !v.Verify.Report.OK || v.Verify.Anchors == nil || v.Verify.Anchors.Checked == 0 {
		t.Fatalf("log --verify: %+v, %v", v.Verify, err)
	}
	var out bytes.Buffer
	printVerify(&out, v.Verify, nil)
	if !strings.Contains(out.String(), "hash chain intact") || !strings.Contains(out.String(), "agree with the journal") {
		t.Errorf("log --verify printed:\n%s", out.String())
	}
	// Without the JSON log, an anchor file that holds nothing of this run:
	// what held is said, then the error (exit 1).
	empty := filepath.Join(d.dir, "anchors")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(logPath(d.state)); err != nil {
		t.Fatal(err)
	}
	v, err = runLog(ctx, logOptions{StatePath: d.state, Verify: true, Anchor: empty})
	if exitOf(err) != exitError || v.Verify == nil || !strings.Contains(err.Error(), "no anchor of this run in "+empty) {
		t.Errorf("log --verify --anchor EMPTY: %+v, %v", v.Verify, err)
	}
	if _, err := runRuns(ctx, runsOptions{StatePath: filepath.Join(d.dir, "none.db")}); err == nil {
		t.Error("runs of a missing state file: no error")
	}
	if _, err := runLog(ctx, logOptions{StatePath: d.state, RunID: "nope"}); err == nil || errors.Is(err, state.ErrNoRun) && !strings.Contains(err.Error(), "nope") {
		t.Errorf("log of an unknown run: %v", err)
	}
}
