// Package crisis adds to a run's summary what a crisis cell watches:
// deadlines against each node's RTO, gates with the approvals they have
// and need, and who owns each node. status, the report and the dashboard
// read it.
package crisis

import (
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/deadline"
)

// View is the crisis cell's part of where a run stands.
type View struct {
	// DeadlinesFrom is when deadlines count from (incident.detected, else
	// the run's start); zero when no node has an RTO.
	DeadlinesFrom time.Time               `json:"deadlines_from,omitzero"`
	Deadlines     []deadline.Deadline     `json:"deadlines,omitempty"`
	DeadlineCount map[deadline.Status]int `json:"deadline_counts,omitempty"`
	Gates         []Gate                  `json:"gates,omitempty"`
	Contacts      map[string]Contact      `json:"contacts,omitempty"` // by node id, nodes that declare any
	byNode        map[string]*deadline.Deadline
}

// Gate is a manual gate waiting for approval.
type Gate struct {
	Node      string            `json:"node"`
	Title     string            `json:"title,omitempty"`
	Needed    int               `json:"needed"`
	Approvers []engine.Approver `json:"approvers"`
	Contact
}

// Contact is who answers for a node.
type Contact struct {
	Owner   string `json:"owner,omitempty"`
	Contact string `json:"contact,omitempty"`
	Runbook string `json:"runbook,omitempty"`
}

// Journal reads a run's journal (state.Store.Journal, control.Client.Journal).
type Journal func(runID string, afterSeq uint64, fn func(state.Entry) error) error

// Build computes the crisis view of the run m (engine/view, the one model
// of where a run stands); journal is read for the approvals of waiting
// gates that need several (nil: not read).
func Build(m *view.Model, journal Journal) (View, error) {
	var v View
	g, a, run := m.Graph, m.Analysis, m.Run
	if g == nil || a == nil {
		return v, nil
	}
	recs := make([]state.NodeRecord, len(m.Nodes))
	for i := range m.Nodes {
		recs[i] = m.Nodes[i].NodeRecord
	}
	origin := deadline.Origin(g, run.Created)
	v.Deadlines = deadline.Compute(g, a, recs, origin, m.Now)
	if len(v.Deadlines) > 0 {
		v.DeadlinesFrom = origin
		v.DeadlineCount = deadline.Count(v.Deadlines)
	}
	v.Contacts = map[string]Contact{}
	for _, n := range g.Nodes {
		if c := contactOf(n); c != (Contact{}) {
			v.Contacts[n.ID] = c
		}
	}
	for _, rec := range recs {
		if rec.State != state.NodeWaiting {
			continue
		}
		i, ok := g.Index(rec.ID)
		if !ok {
			continue
		}
		n := g.Nodes[i]
		gate := Gate{Node: n.ID, Title: n.Title, Needed: g.NodeApprovals(n, a.Effective[i]), Contact: contactOf(n),
			Approvers: []engine.Approver{}}
		if journal != nil && gate.Needed > 1 {
			given, err := engine.GateApprovals(journal, run.ID, n.ID)
			if err != nil {
				return v, err
			}
			gate.Approvers = given
		}
		v.Gates = append(v.Gates, gate)
	}
	return v, nil
}

func contactOf(n *graphs.Node) Contact {
	return Contact{Owner: n.Owner, Contact: n.Contact, Runbook: n.Runbook}
}

// Deadline returns node id's deadline, if it has one.
func (v *View) Deadline(id string) (deadline.Deadline, bool) {
	if v.byNode == nil {
		v.byNode = make(map[string]*deadline.Deadline, len(v.Deadlines))
		for i := range v.Deadlines {
			v.byNode[v.Deadlines[i].Node] = &v.Deadlines[i]
		}
	}
	d, ok := v.byNode[id]
	if !ok {
		return deadline.Deadline{}, false
	}
	return *d, true
}
