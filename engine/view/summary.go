package view

import (
	"math"
	"sort"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Summary is the JSON form of a Model that `reprise status --json` prints.
// Its field names are a contract for outside tools: add fields, don't
// rename them.
type Summary struct {
	Run    string          `json:"run"`
	Status state.RunStatus `json:"status"` // "interrupted" for a run whose process is gone
	Graph  string          `json:"graph"`
	File   string          `json:"graph_file,omitempty"`
	Live   bool            `json:"live"` // a process is running it now
	// LastSeen is the last change recorded for the run (for a run that is
	// not live, nothing happened after it).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Drill is true for an exercise run on the real plan; Cleanup is the
	// record of its clean-up (nil: not recorded yet).
	Drill    bool           `json:"drill,omitempty"`
	Cleanup  *state.Cleanup `json:"cleanup,omitempty"`
	Created  time.Time      `json:"created,omitzero"`
	Updated  time.Time      `json:"updated,omitzero"`
	Finished time.Time      `json:"finished,omitzero"`
	Total    int            `json:"total"`
	Done     int            `json:"done"`    // succeeded (skipped nodes are not done)
	Percent  float64        `json:"percent"` // Done / Total × 100, 0 when Total is 0
	// Counts of nodes by state (every state, zero included).
	Counts        map[state.NodeState]int `json:"counts"`
	ByKind        []SummaryBreakdown      `json:"by_kind"`
	ByCriticality []SummaryBreakdown      `json:"by_criticality"` // effective criticality
	Running       []RunningNode           `json:"running"`
	// RootCauses are the failed nodes, most critical first, with their
	// full last error and the blocked nodes each stops.
	RootCauses []RootCause `json:"root_causes"`
	// BlockedOther lists blocked nodes without a failed ancestor.
	BlockedOther []string      `json:"blocked_other"`
	Failures     []NodeFailure `json:"failures"` // failed and blocked nodes
	Waiting      []string      `json:"waiting"`  // gates waiting for approval
	// ETASeconds estimates the time left (Estimate).
	ETASeconds float64      `json:"eta_seconds"`
	Nodes      []NodeStatus `json:"nodes"` // by id
	// Zones are the trust zones, most trusted first; RestorePoints the
	// nodes with restore points (both left out without them).
	Zones         []ZoneStatus  `json:"zones,omitempty"`
	RestorePoints []PointChoice `json:"restore_points,omitempty"`
}

// SummaryBreakdown counts the nodes of one kind or one criticality.
type SummaryBreakdown struct {
	Key     string                  `json:"key"`
	Total   int                     `json:"total"`
	Done    int                     `json:"done"`
	Percent float64                 `json:"percent"`
	Counts  map[state.NodeState]int `json:"counts"`
}

// RunningNode is a node whose step is running (or was, when its process
// went away: its elapsed time stops at LastSeen).
type RunningNode struct {
	ID             string    `json:"id"`
	Attempt        int       `json:"attempt"`
	Started        time.Time `json:"started"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
}

// RootCause is a failed node and what it blocks.
type RootCause struct {
	ID          string             `json:"id"`
	Criticality graphs.Criticality `json:"criticality,omitempty"` // effective
	Attempts    int                `json:"attempts"`
	LastError   string             `json:"last_error"`
	Blocks      []string           `json:"blocks"`
}

// NodeFailure is a failed or blocked node and its last error.
type NodeFailure struct {
	ID        string          `json:"id"`
	State     state.NodeState `json:"state"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	BlockedBy []string        `json:"blocked_by,omitempty"`
}

// NodeStatus is one node's line in a Summary.
type NodeStatus struct {
	ID          string             `json:"id"`
	State       state.NodeState    `json:"state"`
	Attempts    int                `json:"attempts"`
	Kind        graphs.Kind        `json:"kind,omitempty"`
	Criticality graphs.Criticality `json:"criticality,omitempty"` // effective
	Started     time.Time          `json:"started,omitzero"`
	Ended       time.Time          `json:"ended,omitzero"`
	LastError   string             `json:"last_error,omitempty"`
	ApprovedBy  string             `json:"approved_by,omitempty"`
	MarkedBy    string             `json:"marked_by,omitempty"`
	MarkReason  string             `json:"mark_reason,omitempty"`
}

// Summary returns the status form of m.
func (m *Model) Summary() Summary {
	s := Summary{
		Run: m.Run.ID, Status: m.Status, Graph: m.Run.GraphName, File: m.Run.GraphFile, Live: m.Live,
		LastSeen: m.LastSeen, Drill: m.Run.Options.Drill, Cleanup: m.Run.Cleanup,
		Created: m.Run.Created, Updated: m.Run.Updated, Finished: m.Run.Finished,
		Total: m.Total, Done: m.Done, Percent: m.Percent, Counts: m.Counts,
		ByKind: summaryBreakdowns(m.ByKind), ByCriticality: summaryBreakdowns(m.ByCriticality),
		Running: []RunningNode{}, RootCauses: []RootCause{}, BlockedOther: m.BlockedOther,
		Zones: m.Zones, RestorePoints: m.RestorePoints,
		Failures: []NodeFailure{}, Waiting: []string{},
		ETASeconds: m.ETA.Seconds(), Nodes: make([]NodeStatus, 0, len(m.Nodes)),
	}
	if s.Graph == "" && m.Graph != nil {
		s.Graph = m.Graph.Name
	}
	for _, f := range m.Failures {
		s.RootCauses = append(s.RootCauses, RootCause{ID: f.ID, Criticality: f.Effective, Attempts: f.Attempts,
			LastError: f.Error, Blocks: nonNil(f.Blocks)})
	}
	for i := range m.Nodes {
		n := &m.Nodes[i]
		ns := NodeStatus{ID: n.ID, State: n.State, Attempts: n.Attempts, Kind: n.Kind, Started: n.Started, Ended: n.Ended,
			LastError: n.LastError, ApprovedBy: n.ApprovedBy, MarkedBy: n.MarkedBy, MarkReason: n.MarkReason}
		if m.Graph != nil {
			ns.Criticality = n.Effective
		}
		s.Nodes = append(s.Nodes, ns)
		switch n.State {
		case state.NodeRunning:
			s.Running = append(s.Running, RunningNode{ID: n.ID, Attempt: n.Attempts, Started: n.Started,
				ElapsedSeconds: math.Round(n.Elapsed.Seconds()*10) / 10})
		case state.NodeFailed, state.NodeBlocked:
			s.Failures = append(s.Failures, NodeFailure{ID: n.ID, State: n.State, Attempts: n.Attempts,
				LastError: n.LastError, BlockedBy: n.BlockedBy})
		case state.NodeWaiting:
			s.Waiting = append(s.Waiting, n.ID)
		}
	}
	// status has always listed nodes by id (as the state file keeps them).
	sort.Slice(s.Nodes, func(a, b int) bool { return s.Nodes[a].ID < s.Nodes[b].ID })
	sort.SliceStable(s.Failures, func(a, b int) bool { return s.Failures[a].ID < s.Failures[b].ID })
	sort.Strings(s.Waiting)
	return s
}

func summaryBreakdowns(bs []Breakdown) []SummaryBreakdown {
	out := make([]SummaryBreakdown, 0, len(bs))
	for _, b := range bs {
		out = append(out, SummaryBreakdown{Key: b.Key, Total: b.Total, Done: b.Done, Percent: b.Percent, Counts: b.Counts})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
