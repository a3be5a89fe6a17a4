package report

import (
	"fmt"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// Build makes the report of one run from its records: the run, its node
// records, its journal (in sequence order; nil when not read), the journal's
// verification, and the graph parsed from the run's snapshot (nil when it
// could not be parsed: kinds and dependencies are then unknown). Build never
// fails: missing data shows as unknown in the report. It is FromModel of
// the view.Model of those records.
func Build(run state.Run, nodes []state.NodeRecord, journal []state.Entry, verify state.VerifyReport,
	g *graphs.Graph, opts Options) *Report {
	return FromModel(view.New(view.Input{Run: run, Nodes: nodes, Journal: journal, Verify: &verify, Graph: g,
		Live: opts.Live, Now: opts.Now}), opts)
}

// FromModel makes the report of the run m stands for; every count,
// percentage, criticality, ETA and time span comes from m. Cost: O(V+J)
// plus sorting.
func FromModel(m *view.Model, opts Options) *Report {
	run := m.Run
	r := &Report{
		Run: Run{ID: run.ID, Graph: run.GraphName, GraphFile: run.GraphFile, GraphHash: run.GraphHash,
			Status: string(m.Status), Created: run.Created, Updated: run.Updated, Finished: run.Finished,
			Drill: run.Options.Drill, Live: m.Live},
		Generated: m.Now,
	}
	if m.Interrupted() {
		r.Run.LastSeen = m.LastSeen
	}
	if v := m.Verify; v != nil {
		r.Journal = Journal{Entries: v.Entries, OK: v.OK, FirstBad: v.FirstBad, Problem: v.Problem}
	} else {
		r.Journal = Journal{OK: true}
	}
	if m.JournalErr != nil {
		r.Journal.OK = false
		if r.Journal.Problem == "" {
			r.Journal.Problem = m.JournalErr.Error()
		}
	}
	if !r.Journal.OK {
		r.Journal.Broken = brokenBanner(r.Journal)
	}
	if c := run.Cleanup; c != nil {
		r.Run.Cleanup = &Cleanup{By: c.By, At: c.At, Note: c.Note}
	}
	if r.Run.Graph == "" && m.Graph != nil {
		r.Run.Graph = m.Graph.Name
	}
	if len(m.Journal) > 0 {
		r.Journal.Head = m.Journal[len(m.Journal)-1].Hash
		r.Journal.HeadSeq = m.Journal[len(m.Journal)-1].Seq
	}
	r.Nodes = make([]Node, 0, len(m.Nodes))
	for i := range m.Nodes {
		n := reportNode(&m.Nodes[i], m.Graph != nil)
		for k := range n.Attempts {
			n.Attempts[k].end = m.AttemptEnd(&m.Nodes[i], m.Nodes[i].History[k])
		}
		setSpan(&n)
		r.Nodes = append(r.Nodes, n)
	}
	r.Decisions = decisions(m.Journal, m.Nodes)
	r.addClean(m)
	r.addCrisis(m)
	r.journal, r.graph = m.Journal, m.Graph
	assemble(r, m, opts)
	return r
}

func reportNode(vn *view.Node, known bool) Node {
	n := Node{ID: vn.ID, Title: vn.Title, Kind: "unknown", State: string(vn.State), Started: vn.Started,
		Ended: vn.Ended, LastError: vn.LastError, Criticality: string(vn.Criticality), Effective: string(vn.Effective),
		Wave: vn.Wave, Deps: vn.Deps, BlockedBy: vn.BlockedBy, Outputs: vn.Outputs}
	if known && vn.Kind != "" {
		n.Kind = string(vn.Kind)
	}
	if vn.MarkedBy != "" {
		n.MarkedBy, n.MarkReason = vn.MarkedBy, vn.MarkReason
	}
	for _, a := range vn.History {
		res := string(a.Result)
		if res == "" {
			res = string(state.NodeRunning)
			if !a.Ended.IsZero() {
				res = "other"
			}
		}
		at := Attempt{N: a.N, Started: a.Started, Ended: a.Ended, Result: res}
		if a.Result == state.NodeSucceeded {
			at.Message = a.Error // what the step said; not an error
		} else {
			at.Error = a.Error
		}
		n.Attempts = append(n.Attempts, at)
	}
	return n
}

// decisions lists the operators' acts: every journal entry that names who
// did it, and, for a journal that was not read or lost them, the approvals
// and overrides kept on the node records.
func decisions(journal []state.Entry, nodes []view.Node) []Decision {
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

// brokenBanner is the line shown on top of a report whose journal does not
// verify.
func brokenBanner(j Journal) string {
	s := "journal broken"
	if j.FirstBad != 0 {
		s += fmt.Sprintf(" at entry %d", j.FirstBad)
	}
	if j.Problem != "" {
		s += ": " + j.Problem
	}
	return s + "; the history below is shown as read, treat it as untrusted"
}

// setSpan fills a node's Started and Ended from its attempts when unset.
func setSpan(n *Node) {
	for _, a := range n.Attempts {
		if n.Started.IsZero() || (!a.Started.IsZero() && a.Started.Before(n.Started)) {
			n.Started = a.Started
		}
	}
	if len(n.Attempts) > 0 && n.Ended.IsZero() {
		n.Ended = n.Attempts[len(n.Attempts)-1].Ended
	}
}
