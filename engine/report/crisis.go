package report

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/deadline"
)

// Deadline is a node's recovery time objective and where it stands: the
// target (the deadlines' origin plus the RTO), the projected end of a node
// not done, the actual end of one done.
type Deadline struct {
	NodeID      string    `json:"node"`
	Criticality string    `json:"criticality"` // effective
	RTO         string    `json:"rto"`         // as the graph writes it: "72h", "7d"
	RTOSeconds  float64   `json:"rto_seconds"`
	Target      time.Time `json:"target"`
	Projected   time.Time `json:"projected,omitzero"`
	Actual      time.Time `json:"actual,omitzero"`
	// Status: met, missed (done after its target), on-track, at-risk
	// (projected past its target), late (not done, target passed).
	Status string `json:"status"`
}

// addCrisis fills the deadlines and each node's zone and contacts from
// the run's view m: deadlines are deadline.Compute of m's graph, records
// and time, counted from deadline.Origin, exactly as the crisis view that
// status and the dashboard show (internal/crisis) computes them.
func (r *Report) addCrisis(m *view.Model) {
	if m.Graph == nil || m.Analysis == nil {
		return
	}
	recs := make([]state.NodeRecord, len(m.Nodes))
	for i := range m.Nodes {
		recs[i] = m.Nodes[i].NodeRecord
	}
	origin := deadline.Origin(m.Graph, m.Run.Created)
	ds := deadline.Compute(m.Graph, m.Analysis, recs, origin, m.Now)
	for _, d := range ds {
		r.Deadlines = append(r.Deadlines, Deadline{NodeID: d.Node, Criticality: string(d.Criticality),
			RTO: graphs.FormatDuration(d.RTO), RTOSeconds: d.RTO.Seconds(), Target: d.Target,
			Projected: d.Projected, Actual: d.Actual, Status: string(d.Status)})
	}
	if len(ds) > 0 {
		r.DeadlinesFrom = origin
		r.DeadlineCounts = map[string]int{}
		for st, n := range deadline.Count(ds) {
			r.DeadlineCounts[string(st)] = n
		}
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if gn, ok := m.Graph.Node(n.ID); ok {
			n.Zone, n.Owner, n.Contact, n.Runbook = gn.Zone, gn.Owner, gn.Contact, gn.Runbook
		}
	}
}

// deadlineOrder is how deadlines are listed to a reader: what needs action
// first.
var deadlineOrder = []deadline.Status{deadline.Late, deadline.AtRisk, deadline.Missed, deadline.OnTrack, deadline.Met}

// deadlinesByUrgency returns the deadlines late first, then at risk,
// missed, on track and met, each by target.
func (r *Report) deadlinesByUrgency() []Deadline {
	rank := map[string]int{}
	for i, s := range deadlineOrder {
		rank[string(s)] = i
	}
	out := append([]Deadline(nil), r.Deadlines...)
	sort.SliceStable(out, func(a, b int) bool {
		if rank[out[a].Status] != rank[out[b].Status] {
			return rank[out[a].Status] < rank[out[b].Status]
		}
		return out[a].Target.Before(out[b].Target)
	})
	return out
}

// deadlineCounts says the counts in words, most urgent first: "1 late, 2
// at risk, 5 met".
func (r *Report) deadlineCounts() string {
	var parts []string
	for _, s := range deadlineOrder {
		if n := r.DeadlineCounts[string(s)]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+statusWords(string(s)))
		}
	}
	return strings.Join(parts, ", ")
}

// deadlinesOrigin says what deadlines count from.
func (r *Report) deadlinesOrigin() string {
	if !r.Incident.IsZero() && r.Incident.Equal(r.DeadlinesFrom) {
		return "the incident's detection"
	}
	return "the run's start"
}

func statusWords(s string) string { return strings.ReplaceAll(s, "-", " ") }

// node returns the report's node id.
func (r *Report) node(id string) (Node, bool) {
	for _, n := range r.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// contactLine is who answers for n, on one line ("" when the graph says
// nothing): "owner · contact · runbook".
func contactLine(n Node) string {
	var parts []string
	for _, s := range []string{n.Owner, n.Contact, n.Runbook} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " · ")
}

// markdownDeadlines writes the deadlines, what needs action first.
func (r *Report) markdownDeadlines(p func(string, ...any)) {
	if len(r.Deadlines) == 0 {
		return
	}
	p("## Deadlines (RTO)\n\nCounted from %s, %s: %s.\n\n", r.deadlinesOrigin(), r.mdClock(r.DeadlinesFrom), r.deadlineCounts())
	p("| Node | Criticality | RTO | Target | Projected end | Actual end | Status | Owner |\n|---|---|---:|---|---|---|---|---|\n")
	for _, d := range r.deadlinesByUrgency() {
		n, _ := r.node(d.NodeID)
		status := md(statusWords(d.Status))
		if d.Status == string(deadline.Late) || d.Status == string(deadline.AtRisk) || d.Status == string(deadline.Missed) {
			status = "**" + status + "**"
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", md(d.NodeID), md(d.Criticality), md(d.RTO), r.mdClock(d.Target),
			r.mdClock(d.Projected), r.mdClock(d.Actual), status, md(orDash(contactLine(n))))
	}
	p("\n")
}
