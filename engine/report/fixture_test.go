package report

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// t0 is when the fixture run starts.
var t0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

func at(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

// fixtureGraph is a small hospital: infrastructure, vital applications,
// one interface, a failing lab system with what it blocks, a manual
// re-entry gate that was approved, one still waiting, one override.
func fixtureGraph() *graphs.Graph {
	n := func(id string, k graphs.Kind, c graphs.Criticality, title string, deps ...string) *graphs.Node {
		return &graphs.Node{ID: id, Kind: k, Criticality: c, Title: title, DependsOn: deps, Plugin: "exec"}
	}
	lisToDPI := n("lis-to-dpi", graphs.KindInterface, "", "HL7 ORU results, LIS to patient record")
	lisToDPI.Between = []string{"lis", "dpi"}
	return &graphs.Graph{Version: 1, Name: "chsf-mini", File: "chsf-mini.yaml", Nodes: []*graphs.Node{
		n("network", graphs.KindInfrastructure, "", "Core network and firewalls"),
		n("san", graphs.KindInfrastructure, "", "SAN storage"),
		n("ad", graphs.KindInfrastructure, "", "Active Directory, trusted core", "network"),
		n("hypervisor", graphs.KindInfrastructure, "", "Hypervisor cluster", "san", "network"),
		n("dpi", graphs.KindApplication, graphs.CriticalityVital, "Patient record (DPI)", "ad", "hypervisor"),
		n("pacs", graphs.KindApplication, graphs.CriticalityVital, "Imaging archive (PACS)", "ad", "hypervisor"),
		n("pharmacy", graphs.KindApplication, graphs.CriticalityVital, "Pharmacy: stock, ordering, dispensation", "ad"),
		n("lis", graphs.KindApplication, graphs.CriticalityVital, "Laboratory system (LIS)", "ad", "hypervisor"),
		n("lab-middleware", graphs.KindApplication, graphs.CriticalityHigh, "Lab middleware", "lis"),
		lisToDPI,
		n("sterilisation", graphs.KindApplication, graphs.CriticalityNormal, "Sterilisation tracking", "ad"),
		n("paper-reentry", graphs.KindData, graphs.CriticalityHigh, "Re-entry of paper records, emergency", "dpi"),
		n("pmsi", graphs.KindApplication, graphs.CriticalityLow, "Activity coding (PMSI)", "dpi"),
		n("pmsi-signoff", graphs.KindData, graphs.CriticalityLow, "Coding sign-off by the DIM", "pmsi"),
	}}
}

// step is one scripted transition of the fixture run.
type step struct {
	at      float64 // minutes after t0
	node    string
	st      state.NodeState
	attempt int
	msg     string
	by      string
	typ     string // journal entry type; default: the state
}

var fixtureSteps = []step{
	{at: 0, node: "network", st: state.NodeRunning, attempt: 1},
	{at: 0, node: "san", st: state.NodeRunning, attempt: 1},
	{at: 12, node: "network", st: state.NodeSucceeded, attempt: 1},
	{at: 12.5, node: "ad", st: state.NodeRunning, attempt: 1},
	{at: 20, node: "san", st: state.NodeSucceeded, attempt: 1},
	{at: 20.2, node: "hypervisor", st: state.NodeRunning, attempt: 1},
	{at: 47, node: "ad", st: state.NodeSucceeded, attempt: 1},
	{at: 47.2, node: "pharmacy", st: state.NodeRunning, attempt: 1},
	{at: 47.2, node: "sterilisation", st: state.NodeRunning, attempt: 1},
	{at: 52, node: "sterilisation", st: state.NodeFailed, attempt: 1, msg: "exit status 2: licence server unreachable"},
	{at: 55, node: "hypervisor", st: state.NodeSucceeded, attempt: 1},
	{at: 55.1, node: "dpi", st: state.NodeRunning, attempt: 1},
	{at: 55.1, node: "pacs", st: state.NodeRunning, attempt: 1},
	{at: 55.1, node: "lis", st: state.NodeRunning, attempt: 1},
	{at: 63, node: "pharmacy", st: state.NodeSucceeded, attempt: 1},
	{at: 70, node: "lis", st: state.NodeFailed, attempt: 1, msg: "restore-lis.sh: database restore: checksum mismatch on backup set 2026-08-20"},
	{at: 71, node: "lis", st: state.NodeRunning, attempt: 2},
	{at: 84, node: "lis", st: state.NodeFailed, attempt: 2, msg: "restore-lis.sh: database restore: checksum mismatch on backup set 2026-08-19 <older set>"},
	{at: 84, node: "lab-middleware", st: state.NodeBlocked},
	{at: 84, node: "lis-to-dpi", st: state.NodeBlocked},
	{at: 90, node: "sterilisation", st: state.NodeSucceeded, msg: "restored by hand from the vendor's image", by: "m.durand", typ: "marked"},
	{at: 96, node: "pacs", st: state.NodeSucceeded, attempt: 1},
	{at: 101, node: "dpi", st: state.NodeSucceeded, attempt: 1},
	{at: 101.1, node: "paper-reentry", st: state.NodeWaiting, attempt: 1},
	{at: 101.1, node: "pmsi", st: state.NodeRunning, attempt: 1},
	{at: 112, node: "pmsi", st: state.NodeSucceeded, attempt: 1},
	{at: 112.1, node: "pmsi-signoff", st: state.NodeWaiting, attempt: 1},
	{at: 131, node: "paper-reentry", st: state.NodeSucceeded, msg: "emergency paper files typed in, checked by 2 nurses", by: "dr.lefevre", typ: "approved"},
}

// fixtureKind says how the fixture run is started and closed.
type fixtureKind struct {
	drill bool // started as a drill (state.RunOptions.Drill)
	// cleanup, when set, is recorded after the run as engine.RecordCleanup
	// does: on the run, with a "cleaned-up" journal entry.
	cleanup *state.Cleanup
}

// mustFixtureStore writes the fixture run into a real state file through
// the store's API and returns the file's path and the run id.
func mustFixtureStore(t testing.TB, kind fixtureKind) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := state.Open(path, state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	g := fixtureGraph()
	const runID = "20261128-080000-test"
	recs := map[string]*state.NodeRecord{}
	var initial []state.NodeRecord
	for _, n := range g.Nodes {
		initial = append(initial, state.NodeRecord{ID: n.ID, State: state.NodePending})
		recs[n.ID] = &state.NodeRecord{ID: n.ID, State: state.NodePending}
	}
	run := state.Run{ID: runID, GraphName: g.Name, GraphFile: g.File, Status: state.RunRunning, Created: t0,
		Options: state.RunOptions{Drill: kind.drill}}
	if err := s.CreateRun(ctx, run, []byte("version: 1\nname: chsf-mini\n"), initial); err != nil {
		t.Fatal(err)
	}
	for _, st := range fixtureSteps {
		now := at(st.at)
		rec := recs[st.node]
		rec.State = st.st
		switch {
		case st.st == state.NodeRunning || st.st == state.NodeWaiting: // a gate's wait is its attempt
			rec.Attempts = st.attempt
			rec.Started, rec.Ended, rec.LastError = now, time.Time{}, ""
			a := state.Attempt{N: st.attempt, Started: now}
			if st.st == state.NodeWaiting {
				a.Result = state.NodeWaiting
			}
			rec.History = append(rec.History, a)
		case st.typ == "approved":
			rec.ApprovedBy, rec.ApprovalComment, rec.ApprovedAt, rec.Ended = st.by, st.msg, now, now
			rec.History[len(rec.History)-1].Ended = now
			rec.History[len(rec.History)-1].Result = state.NodeSucceeded
		case st.typ == "marked":
			rec.MarkedBy, rec.MarkReason, rec.Ended = st.by, st.msg, now
		case st.st == state.NodeBlocked:
		default: // an attempt ends
			rec.Ended = now
			h := &rec.History[len(rec.History)-1]
			h.Ended, h.Result, h.Error = now, st.st, st.msg
			if st.st == state.NodeFailed {
				rec.LastError = st.msg
			}
		}
		typ := st.typ
		if typ == "" {
			typ = string(st.st)
			if st.st == state.NodeRunning {
				typ = "started"
			}
		}
		cp := *rec
		cp.History = append([]state.Attempt(nil), rec.History...)
		err := s.Apply(ctx, state.Change{RunID: runID, Node: &cp, Entry: &state.Entry{Time: now, Type: state.EntryType(typ),
			NodeID: st.node, State: st.st, Attempt: st.attempt, Message: st.msg, By: st.by}})
		if err != nil {
			t.Fatal(err)
		}
	}
	run.Status, run.Updated = state.RunParked, at(131)
	if err := s.Apply(ctx, state.Change{RunID: runID, Run: &run,
		Entry: &state.Entry{Time: at(131), Type: "run-parked", Message: "1 gate waits"}}); err != nil {
		t.Fatal(err)
	}
	if c := kind.cleanup; c != nil {
		run.Cleanup, run.Updated = c, c.At
		if err := s.Apply(ctx, state.Change{RunID: runID, Run: &run, Entry: &state.Entry{Time: c.At,
			Type: "cleaned-up", By: c.By, Message: c.Note, Data: map[string]string{"status": string(run.Status)}}}); err != nil {
			t.Fatal(err)
		}
	}
	return path, runID
}

// mustFixture builds the report of the fixture run, read back from its
// state file.
func mustFixture(t testing.TB) *Report {
	t.Helper()
	return mustFixtureOf(t, fixtureKind{})
}

// mustFixtureOf builds the report of the fixture run started and closed as
// kind says.
func mustFixtureOf(t testing.TB, kind fixtureKind) *Report {
	t.Helper()
	path, runID := mustFixtureStore(t, kind)
	s, err := state.Open(path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run, err := s.Run(runID)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := s.Nodes(runID)
	if err != nil {
		t.Fatal(err)
	}
	var journal []state.Entry
	if err := s.Journal(runID, 0, func(e state.Entry) error { journal = append(journal, e); return nil }); err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(runID)
	if err != nil {
		t.Fatal(err)
	}
	return Build(run, nodes, journal, v, fixtureGraph(), Options{Now: at(140)})
}
