package report

import (
	"sort"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Build makes the report of one run from its records: the run, its node
// records, its journal (in sequence order; nil when not read), the journal's
// verification, and the graph parsed from the run's snapshot (nil when it
// could not be parsed: kinds and dependencies are then unknown). Build never
// fails: missing data shows as unknown in the report. Cost: O(V+E+J) plus
// sorting.
func Build(run state.Run, nodes []state.NodeRecord, journal []state.Entry, verify state.VerifyReport,
	g *graphs.Graph, opts Options) *Report {
	r := &Report{
		Run: Run{ID: run.ID, Graph: run.GraphName, GraphFile: run.GraphFile, GraphHash: run.GraphHash,
			Status: string(run.Status), Created: run.Created, Updated: run.Updated, Finished: run.Finished,
			Drill: run.Options.Drill},
		Journal: Journal{Entries: verify.Entries, OK: verify.OK, FirstBad: verify.FirstBad, Problem: verify.Problem},
	}
	if c := run.Cleanup; c != nil {
		r.Run.Cleanup = &Cleanup{By: c.By, At: c.At, Note: c.Note}
	}
	if r.Run.Graph == "" && g != nil {
		r.Run.Graph = g.Name
	}
	if len(journal) > 0 {
		r.Journal.Head = journal[len(journal)-1].Hash
	}
	byID := make(map[string]*graphs.Node)
	var order []string
	if g != nil {
		for _, n := range g.Nodes {
			byID[n.ID] = n
			order = append(order, n.ID)
		}
	}
	recs := make(map[string]state.NodeRecord, len(nodes))
	var extra []string
	for _, rec := range nodes {
		recs[rec.ID] = rec
		if _, ok := byID[rec.ID]; !ok {
			extra = append(extra, rec.ID)
		}
	}
	sort.Strings(extra)
	for _, id := range append(order, extra...) {
		rec, ok := recs[id]
		if !ok {
			continue // in the graph but not part of this run
		}
		r.Nodes = append(r.Nodes, reportNode(rec, byID[id]))
	}
	r.Decisions = decisions(journal, nodes)
	assemble(r, opts)
	return r
}

func reportNode(rec state.NodeRecord, gn *graphs.Node) Node {
	n := Node{ID: rec.ID, Kind: "unknown", State: string(rec.State), Started: rec.Started,
		Ended: rec.Ended, LastError: rec.LastError}
	if gn != nil {
		n.Title, n.Kind, n.Criticality, n.Deps = gn.Title, string(gn.Kind), string(gn.Criticality), gn.Deps()
	}
	for _, a := range rec.History {
		res := string(a.Result)
		if res == "" {
			res = string(state.NodeRunning)
			if !a.Ended.IsZero() {
				res = "other"
			}
		}
		n.Attempts = append(n.Attempts, Attempt{N: a.N, Started: a.Started, Ended: a.Ended, Result: res, Error: a.Error})
	}
	return n
}

// decisions lists the operators' acts: every journal entry that names who
// did it, and, for a journal that was not read or lost them, the approvals
// and overrides kept on the node records.
func decisions(journal []state.Entry, nodes []state.NodeRecord) []Decision {
	out := []Decision{}
	seen := map[[2]string]bool{}
	for _, e := range journal {
		if e.By == "" {
			continue
		}
		d := Decision{Type: DecisionOther, NodeID: e.NodeID, By: e.By, At: e.Time, Reason: e.Message, Seq: e.Seq,
			cleanup: e.Type == state.EntryCleanedUp}
		switch e.Type {
		case state.EntryApproved:
			d.Type = DecisionApproval
		case state.EntryMarked:
			d.Type = DecisionOverride
		default:
			if d.Reason == "" {
				d.Reason = string(e.Type)
			} else {
				d.Reason = string(e.Type) + ": " + d.Reason
			}
		}
		seen[[2]string{d.Type, d.NodeID}] = true
		out = append(out, d)
	}
	for _, n := range nodes {
		if n.ApprovedBy != "" && !seen[[2]string{DecisionApproval, n.ID}] {
			out = append(out, Decision{Type: DecisionApproval, NodeID: n.ID, By: n.ApprovedBy,
				At: n.ApprovedAt, Reason: n.ApprovalComment})
		}
		if n.MarkedBy != "" && !seen[[2]string{DecisionOverride, n.ID}] {
			out = append(out, Decision{Type: DecisionOverride, NodeID: n.ID, By: n.MarkedBy,
				At: n.Ended, Reason: n.MarkReason})
		}
	}
	return out
}
