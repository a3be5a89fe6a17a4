package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// mustHospitalState writes a run of the hospital demo graph (every node of
// examples/hospital/graph.yaml) in the middle of a bad day: infrastructure
// back, a failure high in the graph with what it blocks, a node running, a
// gate waiting, one node marked done, the rest pending.
func mustHospitalState(t *testing.T) (string, string) {
	t.Helper()
	src, err := os.ReadFile(hospitalGraph)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Parse(hospitalGraph, src)
	if err != nil {
		t.Fatal(err)
	}
	a := graphs.Analyze(g)
	path := filepath.Join(t.TempDir(), "h.db")
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	const runID = "20261128-hospital"
	recs := make([]state.NodeRecord, len(g.Nodes))
	for k, i := range a.Order { // dependencies first
		n := g.Nodes[i]
		rec := state.NodeRecord{ID: n.ID, State: state.NodePending}
		start, end := t0.Add(time.Duration(k)*time.Minute), t0.Add(time.Duration(k+1)*time.Minute)
		ready := true
		for _, d := range a.Deps[i] {
			switch recs[d].State {
			case state.NodeFailed, state.NodeBlocked:
				rec.State = state.NodeBlocked
			}
			ready = ready && recs[d].State == state.NodeSucceeded
		}
		switch {
		case !ready:
		case n.ID == "lis":
			rec.State, rec.Attempts, rec.Started, rec.Ended = state.NodeFailed, 3, start, end
			rec.LastError = "restore: checksum mismatch\nbackup set 2026-08-19 is older than the last good one"
		case n.ID == "pacs" || n.ID == "pacs-images":
			rec.State, rec.Attempts, rec.Started = state.NodeRunning, 1, start
		case n.ID == "dpi":
			rec.State, rec.Attempts, rec.Started, rec.Ended = state.NodeSucceeded, 1, start, end
			rec.MarkedBy, rec.MarkReason = "m.durand", "restored by hand"
		case n.Kind == graphs.KindData:
			rec.State, rec.Attempts, rec.Started = state.NodeWaiting, 1, start
		case n.Kind == graphs.KindInterface && strings.HasPrefix(n.ID, "adt-eai-"):
		default:
			rec.State, rec.Attempts, rec.Started, rec.Ended = state.NodeSucceeded, 1, start, end
		}
		if rec.Attempts > 0 {
			rec.History = []state.Attempt{{N: rec.Attempts, Started: rec.Started, Ended: rec.Ended, Result: rec.State, Error: rec.LastError}}
			if rec.State == state.NodeRunning {
				rec.History[0].Result = ""
			}
		}
		recs[i] = rec
	}
	run := state.Run{ID: runID, GraphName: g.Name, GraphFile: hospitalGraph, Status: state.RunFailed, Created: t0,
		Updated: t0.Add(2 * time.Hour), Total: len(recs)}
	if err := st.CreateRun(context.Background(), run, src, recs); err != nil {
		t.Fatal(err)
	}
	return path, runID
}

// mustEmptyState writes a run without any node record, and a fresh one
// whose nodes are all pending.
func mustEmptyState(t *testing.T) (path, empty, fresh string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "e.db")
	st, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	var pending []state.NodeRecord
	for _, id := range []string{"ad", "dpi", "lis", "reentry"} {
		pending = append(pending, state.NodeRecord{ID: id, State: state.NodePending})
	}
	for _, r := range []struct {
		id   string
		recs []state.NodeRecord
	}{{"20261128-empty", nil}, {"20261128-fresh", pending}} {
		run := state.Run{ID: r.id, GraphName: "report-cmd", GraphFile: "graph.yaml", Status: state.RunInterrupted, Created: t0}
		if err := st.CreateRun(context.Background(), run, []byte(reportGraphYAML), r.recs); err != nil {
			t.Fatal(err)
		}
	}
	return path, "20261128-empty", "20261128-fresh"
}

// TestStatusReportParity: status and report give the same counts and
// percentages for the same run, from the one model of engine/view.
func TestStatusReportParity(t *testing.T) {
	hospital, hospitalRun := mustHospitalState(t)
	failed, failedRun := mustReportState(t)
	empty, emptyRun, freshRun := mustEmptyState(t)
	tests := []struct {
		name, path, run string
		wantTotal       int
	}{
		{"hospital demo graph, failed and blocked", hospital, hospitalRun, -1},
		{"failed and blocked nodes", failed, failedRun, 4},
		{"empty run", empty, emptyRun, 0},
		{"fresh run", empty, freshRun, 4},
	}
	type breakdown struct {
		Key     string
		Total   int
		Done    int
		Percent float64
		Counts  map[string]int
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runGraphsCmd(t, "status", tt.run, "--state", tt.path, "--json")
			if code != 0 {
				t.Fatalf("status: exit %d: %s", code, stderr)
			}
			var st struct {
				Total         int            `json:"total"`
				Done          int            `json:"done"`
				Percent       float64        `json:"percent"`
				Counts        map[string]int `json:"counts"`
				ByKind        []breakdown    `json:"by_kind"`
				ByCriticality []breakdown    `json:"by_criticality"`
				RootCauses    []struct {
					ID     string   `json:"id"`
					Blocks []string `json:"blocks"`
				} `json:"root_causes"`
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			out, stderr, code = runGraphsCmd(t, "report", tt.run, "--state", tt.path, "--json")
			if code != 0 {
				t.Fatalf("report: exit %d: %s", code, stderr)
			}
			type rb struct {
				Name     string         `json:"name"`
				Total    int            `json:"total"`
				Restored int            `json:"restored"`
				Percent  float64        `json:"percent"`
				States   map[string]int `json:"states"`
			}
			var rep struct {
				Summary struct {
					Total         int            `json:"total"`
					Restored      int            `json:"restored"`
					Percent       float64        `json:"percent"`
					States        map[string]int `json:"states"`
					ByKind        []rb           `json:"by_kind"`
					ByCriticality []rb           `json:"by_criticality"`
				} `json:"summary"`
				Failures []struct {
					Node   string   `json:"node"`
					Blocks []string `json:"blocks"`
				} `json:"failures"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("report --json: %v\n%s", err, out)
			}
			conv := func(bs []rb) []breakdown {
				out := []breakdown{}
				for _, b := range bs {
					out = append(out, breakdown{b.Name, b.Total, b.Restored, b.Percent, b.States})
				}
				return out
			}
			s := rep.Summary
			if st.Total != s.Total || st.Done != s.Restored || st.Percent != s.Percent {
				t.Errorf("status %d/%d (%v %%), report %d/%d (%v %%)", st.Done, st.Total, st.Percent, s.Restored, s.Total, s.Percent)
			}
			if tt.wantTotal >= 0 && st.Total != tt.wantTotal {
				t.Errorf("total %d; want %d", st.Total, tt.wantTotal)
			}
			if !reflect.DeepEqual(st.Counts, s.States) {
				t.Errorf("counts: status %v, report %v", st.Counts, s.States)
			}
			if !reflect.DeepEqual(st.ByKind, conv(s.ByKind)) {
				t.Errorf("by kind: status %+v, report %+v", st.ByKind, conv(s.ByKind))
			}
			if !reflect.DeepEqual(st.ByCriticality, conv(s.ByCriticality)) {
				t.Errorf("by criticality: status %+v, report %+v", st.ByCriticality, conv(s.ByCriticality))
			}
			if len(st.RootCauses) != len(rep.Failures) {
				t.Fatalf("root causes: status %+v, report %+v", st.RootCauses, rep.Failures)
			}
			for i := range st.RootCauses {
				if st.RootCauses[i].ID != rep.Failures[i].Node || len(st.RootCauses[i].Blocks) != len(rep.Failures[i].Blocks) {
					t.Errorf("root cause %d: status %+v, report %+v", i, st.RootCauses[i], rep.Failures[i])
				}
			}
			if tt.run == hospitalRun && (len(st.RootCauses) != 1 || len(st.RootCauses[0].Blocks) == 0 || st.Counts["running"] == 0 || st.Counts["waiting"] == 0 || st.Counts["pending"] == 0) {
				t.Errorf("hospital fixture: want one failure blocking nodes and nodes running; got %+v", st)
			}
		})
	}
}
