package view

import (
	"github.com/reprise-si/reprise/engine/state"
)

// The outputs the engine gives a node restored from a restore point (the
// engine's Output* constants are these).
const (
	OutputRestorePoint     = "restore_point"
	OutputRestorePointTime = "restore_point_time"
	OutputRestoreVerdict   = "restore_point_verdict"
	OutputDataLost         = "data_lost"
	OutputSuspiciousPoint  = "suspicious_point"
)

// ZoneStatus is one trust zone: its nodes' progress and its certification.
type ZoneStatus struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Total int    `json:"total"`
	Done  int    `json:"done"`
	// Certified is the zone's certification (nil: not yet).
	Certified *state.Certification `json:"certified,omitempty"`
	// Open says whether its nodes may start: every more trusted zone is
	// certified.
	Open bool `json:"open"`
}

// PointChoice is the restore point a node was restored from (or waits on),
// and the data lost: the RPO achieved.
type PointChoice struct {
	Node    string `json:"node"`
	Point   string `json:"point,omitempty"`
	Time    string `json:"time,omitempty"` // RFC 3339, UTC
	Verdict string `json:"verdict,omitempty"`
	// DataLost is incident.detected minus the point's time ("" without an
	// incident or before the node is restored).
	DataLost string `json:"data_lost,omitempty"`
	// Suspicious is the point the node waits on for an operator's decision.
	Suspicious string          `json:"suspicious,omitempty"`
	State      state.NodeState `json:"state"`
}

// clean computes the zones and the restore points of the Model.
func (m *Model) clean() {
	if m.Graph == nil {
		return
	}
	byID := make(map[string]*Node, len(m.Nodes))
	for i := range m.Nodes {
		byID[m.Nodes[i].ID] = &m.Nodes[i]
	}
	open := true
	for _, z := range m.Graph.Zones {
		zs := ZoneStatus{ID: z.ID, Title: z.Title, Open: open}
		for k := range m.Run.Certified {
			if m.Run.Certified[k].Zone == z.ID {
				c := m.Run.Certified[k]
				zs.Certified = &c
			}
		}
		for _, n := range m.Graph.Nodes {
			if n.Zone != z.ID {
				continue
			}
			zs.Total++
			if rec := byID[n.ID]; rec != nil && rec.State.Done() {
				zs.Done++
			}
		}
		open = open && zs.Certified != nil
		m.Zones = append(m.Zones, zs)
	}
	for _, n := range m.Graph.Nodes {
		if n.RestorePoints == nil {
			continue
		}
		pc := PointChoice{Node: n.ID, State: state.NodePending}
		if rec := byID[n.ID]; rec != nil {
			pc.State = rec.State
			pc.Suspicious = rec.Outputs[OutputSuspiciousPoint]
			if rec.State == state.NodeSucceeded {
				pc.Point, pc.Time = rec.Outputs[OutputRestorePoint], rec.Outputs[OutputRestorePointTime]
				pc.Verdict, pc.DataLost = rec.Outputs[OutputRestoreVerdict], rec.Outputs[OutputDataLost]
			}
		}
		m.RestorePoints = append(m.RestorePoints, pc)
	}
}
