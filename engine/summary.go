package engine

import (
	"math"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Summary is where a run stands: what `reprise status` shows and prints as
// JSON. The JSON field names are a contract for outside tools.
type Summary struct {
	Run    string          `json:"run"`
	Status state.RunStatus `json:"status"`
	Graph  string          `json:"graph"`
	File   string          `json:"graph_file,omitempty"`
	Live   bool            `json:"live"` // a process is running it now
	// Drill is true for an exercise run on the real plan; Cleanup is the
	// record of its clean-up (nil: not recorded yet).
	Drill    bool           `json:"drill,omitempty"`
	Cleanup  *state.Cleanup `json:"cleanup,omitempty"`
	Created  time.Time      `json:"created,omitzero"`
	Updated  time.Time      `json:"updated,omitzero"`
	Finished time.Time      `json:"finished,omitzero"`
	Total    int            `json:"total"`
	Done     int            `json:"done"`    // succeeded or skipped
	Percent  float64        `json:"percent"` // Done / Total × 100
	// Counts of nodes by state (every state, zero included).
	Counts        map[state.NodeState]int `json:"counts"`
	ByKind        []Breakdown             `json:"by_kind"`
	ByCriticality []Breakdown             `json:"by_criticality"` // effective criticality
	Running       []RunningNode           `json:"running"`
	Failures      []NodeFailure           `json:"failures"` // failed and blocked nodes
	Waiting       []string                `json:"waiting"`  // gates waiting for approval
	// ETASeconds estimates the time left: the longer of the remaining
	// critical path and the remaining work spread over the parallelism,
	// from node estimates, or measured step times where a node has none.
	ETASeconds float64      `json:"eta_seconds"`
	Nodes      []NodeStatus `json:"nodes"`
}

// Breakdown counts the nodes of one kind or one criticality.
type Breakdown struct {
	Key     string                  `json:"key"`
	Total   int                     `json:"total"`
	Done    int                     `json:"done"`
	Percent float64                 `json:"percent"`
	Counts  map[state.NodeState]int `json:"counts"`
}

// RunningNode is a node whose step is running.
type RunningNode struct {
	ID             string    `json:"id"`
	Attempt        int       `json:"attempt"`
	Started        time.Time `json:"started"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
}

// NodeFailure is a failed or blocked node and its last error.
type NodeFailure struct {
	ID        string          `json:"id"`
	State     state.NodeState `json:"state"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
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
}

// Summarize computes a run's Summary from its records and its graph (g may
// be nil when the snapshot cannot be read: kinds, criticalities and the ETA
// are then left out). live says whether a process is running it now.
func Summarize(run state.Run, g *graphs.Graph, recs []state.NodeRecord, live bool, now time.Time) Summary {
	s := Summary{
		Run: run.ID, Status: run.Status, Graph: run.GraphName, File: run.GraphFile, Live: live,
		Drill: run.Options.Drill, Cleanup: run.Cleanup,
		Created: run.Created, Updated: run.Updated, Finished: run.Finished, Total: len(recs),
		Counts: map[state.NodeState]int{}, Running: []RunningNode{}, Failures: []NodeFailure{}, Waiting: []string{},
		Nodes: make([]NodeStatus, 0, len(recs)),
	}
	for _, st := range state.NodeStates {
		s.Counts[st] = 0
	}
	var a *graphs.Analysis
	if g != nil {
		a = graphs.Analyze(g)
	}
	kinds := map[string]*Breakdown{}
	crits := map[string]*Breakdown{}
	for _, rec := range recs {
		s.Counts[rec.State]++
		ns := NodeStatus{ID: rec.ID, State: rec.State, Attempts: rec.Attempts, Started: rec.Started, Ended: rec.Ended,
			LastError: rec.LastError, ApprovedBy: rec.ApprovedBy, MarkedBy: rec.MarkedBy}
		if g != nil {
			if i, ok := g.Index(rec.ID); ok {
				ns.Kind = g.Nodes[i].Kind
				ns.Criticality = g.Nodes[i].Criticality
				if i < len(a.Effective) {
					ns.Criticality = a.Effective[i]
				}
				addBreakdown(kinds, string(ns.Kind), rec.State)
				addBreakdown(crits, string(ns.Criticality), rec.State)
			}
		}
		s.Nodes = append(s.Nodes, ns)
		switch rec.State {
		case state.NodeSucceeded, state.NodeSkipped:
			s.Done++
		case state.NodeRunning:
			s.Running = append(s.Running, RunningNode{ID: rec.ID, Attempt: rec.Attempts, Started: rec.Started,
				ElapsedSeconds: math.Round(now.Sub(rec.Started).Seconds()*10) / 10})
		case state.NodeFailed, state.NodeBlocked:
			s.Failures = append(s.Failures, NodeFailure{ID: rec.ID, State: rec.State, Attempts: rec.Attempts, LastError: rec.LastError})
		case state.NodeWaiting:
			s.Waiting = append(s.Waiting, rec.ID)
		}
	}
	s.Percent = percent(s.Done, s.Total)
	for _, k := range graphs.Kinds {
		if b := kinds[string(k)]; b != nil {
			b.Percent = percent(b.Done, b.Total)
			s.ByKind = append(s.ByKind, *b)
		}
	}
	for _, c := range graphs.Criticalities {
		if b := crits[string(c)]; b != nil {
			b.Percent = percent(b.Done, b.Total)
			s.ByCriticality = append(s.ByCriticality, *b)
		}
	}
	if s.ByKind == nil {
		s.ByKind = []Breakdown{}
	}
	if s.ByCriticality == nil {
		s.ByCriticality = []Breakdown{}
	}
	if g != nil && run.Status != state.RunSucceeded {
		s.ETASeconds = math.Round(estimateLeft(g, a, recs, run.Options.Parallelism, now).Seconds())
	}
	return s
}

func addBreakdown(m map[string]*Breakdown, key string, st state.NodeState) {
	b := m[key]
	if b == nil {
		b = &Breakdown{Key: key, Counts: map[state.NodeState]int{}}
		m[key] = b
	}
	b.Total++
	b.Counts[st]++
	if st.Done() {
		b.Done++
	}
}

func percent(done, total int) float64 {
	if total == 0 {
		return 100
	}
	return math.Round(float64(done)*1000/float64(total)) / 10
}

// estimateLeft is the time left for the nodes not done: the longest of the
// critical path through them, their total work over the parallelism, and
// for each plugin with a max_parallel, its nodes' work over its cap.
// A node's weight is its estimate, or the mean measured time of the steps
// that succeeded; a running node counts what is left of it.
func estimateLeft(g *graphs.Graph, a *graphs.Analysis, recs []state.NodeRecord, parallelism int, now time.Time) time.Duration {
	if parallelism <= 0 {
		parallelism = DefaultParallelism
	}
	byIdx := make([]*state.NodeRecord, len(g.Nodes))
	var measured time.Duration
	var measuredN int
	for k := range recs {
		rec := &recs[k]
		if i, ok := g.Index(rec.ID); ok {
			byIdx[i] = rec
		}
		if rec.State == state.NodeSucceeded && !rec.Started.IsZero() && rec.Ended.After(rec.Started) && rec.ApprovedBy == "" {
			measured += rec.Ended.Sub(rec.Started)
			measuredN++
		}
	}
	var mean time.Duration
	if measuredN > 0 {
		mean = measured / time.Duration(measuredN)
	}
	w := make([]time.Duration, len(g.Nodes))
	var total time.Duration
	capped := map[string]time.Duration{} // work left by plugin with a max_parallel
	todo := 0
	for i, n := range g.Nodes {
		rec := byIdx[i]
		if rec != nil && rec.State.Done() {
			continue
		}
		d := n.Estimate
		if d == 0 {
			d = mean
		}
		if rec != nil && rec.State == state.NodeRunning && !rec.Started.IsZero() {
			d = max(0, d-now.Sub(rec.Started))
		}
		w[i] = d
		total += d
		if g.Plugins[n.Plugin].MaxParallel > 0 {
			capped[n.Plugin] += d
		}
		todo++
	}
	if todo == 0 {
		return 0
	}
	path := make([]time.Duration, len(g.Nodes))
	var longest time.Duration
	for k := len(a.Order) - 1; k >= 0; k-- {
		i := a.Order[k]
		var best time.Duration
		for _, d := range a.Dependents[i] {
			best = max(best, path[d])
		}
		path[i] = w[i] + best
		longest = max(longest, path[i])
	}
	left := max(longest, total/time.Duration(min(parallelism, todo)))
	for p, d := range capped {
		left = max(left, d/time.Duration(g.Plugins[p].MaxParallel))
	}
	return left
}
