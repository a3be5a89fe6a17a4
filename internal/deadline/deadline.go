// Package deadline computes where each node stands against its recovery
// time objective (graph `rto`, per node or by criticality): the target,
// the projected end, the actual end, and whether it is met, on track, at
// risk, late or missed. Status, the report and the dashboard show it.
package deadline

import (
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Status is where a node stands against its deadline.
type Status string

// The statuses.
const (
	Met     Status = "met"      // done before its target
	Missed  Status = "missed"   // done, after its target
	OnTrack Status = "on-track" // not done; projected to end before its target
	AtRisk  Status = "at-risk"  // not done; projected to end after its target
	Late    Status = "late"     // not done, and its target has passed
)

// Deadline is one node's recovery time objective and how it stands.
type Deadline struct {
	Node        string             `json:"node"`
	Criticality graphs.Criticality `json:"criticality"` // effective
	RTO         time.Duration      `json:"rto"`
	Target      time.Time          `json:"target"`
	Projected   time.Time          `json:"projected,omitzero"` // not done: the estimated end
	Actual      time.Time          `json:"actual,omitzero"`    // done: when
	Status      Status             `json:"status"`
}

// Origin is the time deadlines count from: the graph's incident.detected
// when it has one, else the run's start.
func Origin(g *graphs.Graph, runStart time.Time) time.Time {
	if g.Incident != nil && !g.Incident.Detected.IsZero() {
		return g.Incident.Detected
	}
	return runStart
}

// Compute returns the deadline of every node of g that has an RTO, in the
// graph's order. recs are the run's node records (by id, missing ones are
// pending). A node not done is projected to end when its slowest not-done
// dependency is projected to end (or now) plus what is left of its own
// estimate (its estimate, less the time it has been running): an
// optimistic projection with no limit on parallelism, so "at risk" is
// never a false alarm caused by the projection itself.
func Compute(g *graphs.Graph, a *graphs.Analysis, recs []state.NodeRecord, origin, now time.Time) []Deadline {
	byID := make(map[string]*state.NodeRecord, len(recs))
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	n := len(g.Nodes)
	end := make([]time.Time, n)
	done := make([]bool, n)
	for _, i := range a.Order {
		node := g.Nodes[i]
		rec := byID[node.ID]
		if rec != nil && rec.State.Done() {
			done[i] = true
			end[i] = rec.Ended
			if end[i].IsZero() || end[i].After(now) {
				end[i] = now
			}
			continue
		}
		start := now
		for _, d := range a.Deps[i] {
			if !done[d] && end[d].After(start) {
				start = end[d]
			}
		}
		left := node.Estimate
		if rec != nil && rec.State == state.NodeRunning && !rec.Started.IsZero() {
			left -= now.Sub(rec.Started)
			if left < 0 {
				left = 0
			}
		}
		end[i] = start.Add(left)
	}
	var out []Deadline
	for i, node := range g.Nodes {
		rto := g.NodeRTO(node, a.Effective[i])
		if rto <= 0 {
			continue
		}
		d := Deadline{Node: node.ID, Criticality: a.Effective[i], RTO: rto, Target: origin.Add(rto)}
		switch {
		case done[i] && !end[i].After(d.Target):
			d.Actual, d.Status = end[i], Met
		case done[i]:
			d.Actual, d.Status = end[i], Missed
		case now.After(d.Target):
			d.Projected, d.Status = end[i], Late
		case end[i].After(d.Target):
			d.Projected, d.Status = end[i], AtRisk
		default:
			d.Projected, d.Status = end[i], OnTrack
		}
		out = append(out, d)
	}
	return out
}

// Count tallies deadlines by status.
func Count(ds []Deadline) map[Status]int {
	m := map[Status]int{}
	for _, d := range ds {
		m[d.Status]++
	}
	return m
}
