package report

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// TestMain lets the test binary serve the built-in plugins, so that the
// engine runs them out of process as in production.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	os.Exit(m.Run())
}

// engineGraph is a small hospital run by the real engine and plugins: the
// lab system fails (twice, with one retry) and blocks what needs it; a
// manual re-entry gate waits and is approved.
const engineGraph = `version: 1
name: browser-test-hospital
defaults: { retries: 0, retry_delay: 50ms, timeout: 1m }
nodes:
  - id: network
    kind: infrastructure
    title: Core network and firewalls
    plugin: noop
    with: { delay: 300ms }
  - id: san
    kind: infrastructure
    title: SAN storage
    plugin: noop
    with: { delay: 200ms }
  - id: ad
    kind: infrastructure
    title: Active Directory, trusted core
    plugin: noop
    depends_on: [network]
    with: { delay: 400ms }
  - id: dpi
    kind: application
    title: Patient record (DPI)
    criticality: vital
    plugin: exec
    depends_on: [ad, san]
    with: { restore: [sh, -c, "sleep 0.3; echo patient record restored"] }
  - id: pacs
    kind: application
    title: Imaging archive (PACS)
    criticality: vital
    plugin: noop
    depends_on: [ad, san]
    with: { delay: 500ms }
  - id: lis
    kind: application
    title: Laboratory system (LIS)
    criticality: vital
    plugin: exec
    retries: 1
    depends_on: [ad]
    with: { restore: [sh, -c, "sleep 0.2; echo 'restore-lis: checksum mismatch on backup set 2026-08-20' >&2; exit 3"] }
  - id: lab-middleware
    kind: application
    criticality: high
    plugin: noop
    depends_on: [lis]
  - id: lis-to-dpi
    kind: interface
    title: HL7 results, LIS to patient record
    plugin: noop
    between: [lis, dpi]
  - id: paper-reentry
    kind: data
    title: Re-entry of the emergency paper files
    criticality: high
    plugin: manual
    depends_on: [dpi]
    with: { message: type in the emergency paper files }
  - id: pmsi
    kind: application
    title: Activity coding (PMSI)
    criticality: low
    plugin: noop
    depends_on: [paper-reentry]
    with: { delay: 200ms }
`

// mustEngineRun runs engineGraph with the real engine and plugin host into
// a state file, approves the gate and resumes (the lab fails again), and
// returns the report built from the state file.
func mustEngineRun(t testing.TB) *Report {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "hospital.yaml")
	if err := os.WriteFile(file, []byte(engineGraph), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand})
	defer h.Close()
	eng := engine.New(st, h, engine.Options{Parallelism: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := eng.Start(ctx, g)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := eng.Approve(ctx, res.RunID, "paper-reentry", "dr.lefevre", "emergency paper files typed in, checked by two nurses"); err != nil {
		t.Fatalf("approve: %v", err)
	}
	if _, err := eng.Resume(ctx, res.RunID, nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	return mustStoredReport(t, st, res.RunID, time.Now())
}

// mustStoredReport builds the report of run runID from the state file as
// `reprise report` does: run, nodes, journal, verification and the graph
// parsed from the run's snapshot.
func mustStoredReport(t testing.TB, st *state.Store, runID string, now time.Time) *Report {
	t.Helper()
	run, err := st.Run(runID)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := st.Nodes(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var journal []state.Entry
	if err := st.Journal(run.ID, 0, func(e state.Entry) error { journal = append(journal, e); return nil }); err != nil {
		t.Fatal(err)
	}
	v, err := st.Verify(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := graphs.Parse(run.GraphFile, snap)
	if err != nil {
		t.Fatalf("parse the run's snapshot: %v", err)
	}
	return Build(run, nodes, journal, v, sg, Options{Now: now})
}

func TestEngineRunReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs plugin processes")
	}
	r := mustEngineRun(t)
	want := map[string]int{"succeeded": 7, "failed": 1, "blocked": 2}
	for s, n := range want {
		if r.Summary.States[s] != n {
			t.Errorf("%d %s nodes; want %d (states %v)", r.Summary.States[s], s, n, r.Summary.States)
		}
	}
	if r.Summary.Vital != (Share{Restored: 5, Total: 6, Percent: 83.3}) {
		t.Errorf("vital share = %+v; want 2 of 3", r.Summary.Vital)
	}
	if len(r.Failures) != 1 || r.Failures[0].NodeID != "lis" || r.Failures[0].Attempts < 2 {
		t.Errorf("failures = %+v; want lis with its attempts", r.Failures)
	}
	approved := false
	for _, d := range r.Decisions {
		if d.Type == DecisionApproval && d.NodeID == "paper-reentry" && d.By == "dr.lefevre" && !d.At.IsZero() {
			approved = true
		}
	}
	if !approved {
		t.Errorf("decisions = %+v; want the approval of paper-reentry by dr.lefevre", r.Decisions)
	}
	if !r.Journal.OK || r.Journal.Entries < 20 {
		t.Errorf("journal = %+v; want a verified chain", r.Journal)
	}
}
