package view

import (
	"math"
	"sort"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// DefaultParallelism is the parallelism an ETA assumes for a run whose
// options do not say (the engine's default).
const DefaultParallelism = 8

// Input is what a Model is computed from. Load fills it from a Source;
// tests and the engine may fill it by hand.
type Input struct {
	Run   state.Run
	Nodes []state.NodeRecord
	// Graph is the run's graph snapshot, parsed; nil when it could not be
	// read (GraphErr says why): kinds, dependencies and the ETA are then
	// unknown.
	Graph    *graphs.Graph
	GraphErr error
	// Journal is the run's journal in sequence order (nil: not read);
	// JournalErr says what could not be read of it; Verify is the check of
	// its hash chain (nil: not checked).
	Journal    []state.Entry
	JournalErr error
	Verify     *state.VerifyReport
	// Live says a process is running the run now.
	Live bool
	// Now is the time the model is computed at (zero: time.Now()).
	Now time.Time
}

// Model is where a run stands, computed once from an Input. Its fields are
// read-only.
type Model struct {
	Run state.Run
	// Status is the run's status as it truly is: RunInterrupted for a run
	// recorded as running whose process is gone.
	Status state.RunStatus
	// Live says a process is running the run now.
	Live bool
	// LastSeen is the last change recorded for the run: its record, its
	// nodes' attempts and decisions, its journal. For a run that is not
	// live, nothing happened after it.
	LastSeen time.Time
	Now      time.Time

	Graph    *graphs.Graph
	Analysis *graphs.Analysis
	GraphErr error

	Journal    []state.Entry
	JournalErr error
	Verify     *state.VerifyReport

	// Nodes are the run's nodes in graph file order, then the records of
	// nodes no longer in the graph, by id.
	Nodes []Node
	// Counts holds every node state, zero included.
	Counts map[state.NodeState]int
	Total  int
	// Done counts the nodes restored: succeeded. A skipped node (outside
	// a --target run) is not done.
	Done    int
	Percent float64 // Done / Total × 100, 0 when Total is 0
	// ByKind and ByCriticality (effective) count the nodes of each kind
	// and criticality present, in the order of graphs.Kinds and
	// graphs.Criticalities, then any other name sorted.
	ByKind        []Breakdown
	ByCriticality []Breakdown
	// Vital is the share of vital services back: nodes whose effective
	// criticality is vital (the same criticality as ByCriticality).
	Vital Breakdown
	// ETA is the time left (0 when nothing is left or the graph is
	// unknown), from Estimate.
	ETA time.Duration
	// Failures are the root causes: failed nodes, most critical first,
	// then by id, each with the blocked nodes it stops.
	Failures []Failure
	// BlockedOther lists blocked nodes without a failed ancestor (a run
	// stopped by --fail-fast or a removed dependency), by id.
	BlockedOther []string
	// Start and End bound every attempt (open attempts end at OpenUntil);
	// Active is the wall time during which at least one attempt was going
	// on, across sessions and resumes.
	Start, End time.Time
	Active     time.Duration
	// Zones are the trust zones, most trusted first (none without zones);
	// RestorePoints the nodes that declare restore points, in graph order,
	// with the point restored and the data lost.
	Zones         []ZoneStatus
	RestorePoints []PointChoice
}

// Node is one node of the run: its record and what the graph says of it.
type Node struct {
	state.NodeRecord
	Title string
	// Kind is "" when the graph is unknown.
	Kind graphs.Kind
	// Criticality is the declared criticality (normal when unset);
	// Effective the effective one (see graphs.Analysis).
	Criticality graphs.Criticality
	Effective   graphs.Criticality
	// Wave is the node's wave (0: no dependency); Deps its dependencies
	// held by the run.
	Wave int
	Deps []string
	// BlockedBy lists the failed nodes that stop this blocked node: its
	// failed ancestors reached through nodes that did not fail.
	BlockedBy []string
	// Elapsed is the time spent in the attempt going on (running nodes),
	// up to now, or up to LastSeen when the process is gone.
	Elapsed time.Duration
}

// Breakdown counts the nodes of one kind or one criticality.
type Breakdown struct {
	Key     string
	Total   int
	Done    int
	Percent float64 // Done / Total × 100, 0 when Total is 0
	Counts  map[state.NodeState]int
}

// Failure is a failed node, its full last error, and what it blocks.
type Failure struct {
	*Node
	// Error is the node's last error, or its last attempt's.
	Error string
	// Blocks lists the blocked nodes it stops, by id.
	Blocks []string
}

// New computes the Model of in. Cost: O(V+E) plus sorting.
func New(in Input) *Model {
	m := &Model{Run: in.Run, Status: in.Run.Status, Live: in.Live, Now: in.Now, Graph: in.Graph, GraphErr: in.GraphErr,
		Journal: in.Journal, JournalErr: in.JournalErr, Verify: in.Verify, Counts: newCounts()}
	if m.Now.IsZero() {
		m.Now = time.Now()
	}
	if m.Graph != nil {
		m.Analysis = graphs.Analyze(m.Graph)
	}
	m.LastSeen = lastSeen(in)
	m.Status = RunStatus(in.Run, in.Live)
	order := m.nodes(in.Nodes)
	m.count()
	m.blockers(order)
	m.failures()
	m.span()
	m.clean()
	if m.Graph != nil && m.Status != state.RunSucceeded {
		m.ETA = Estimate(m.Graph, m.Analysis, in.Nodes, m.Run.Options.Parallelism, m.OpenUntil())
	}
	return m
}

// Percent is part / total × 100 with one decimal, 0 when total is 0: the
// one rounding of every percentage a view shows.
func Percent(part, total int) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(float64(part)*1000/float64(total)) / 10
}

func newCounts() map[state.NodeState]int {
	m := make(map[state.NodeState]int, len(state.NodeStates))
	for _, s := range state.NodeStates {
		m[s] = 0
	}
	return m
}

// OpenUntil is when attempts that have not ended are counted to: now for a
// live run; for a run whose process is gone, when it was last seen; and in
// a drill whose clean-up was recorded before that, the clean-up.
func (m *Model) OpenUntil() time.Time {
	t := m.Now
	if !m.Live && !m.LastSeen.IsZero() && m.LastSeen.Before(t) {
		t = m.LastSeen
	}
	if c := m.Run.Cleanup; m.Run.Options.Drill && c != nil && !c.At.IsZero() && c.At.Before(t) {
		t = c.At
	}
	return t
}

// WaitUntil is when a gate's open wait is counted to: now (a gate waits
// for a person, not for a process), or a drill's recorded clean-up if
// that is earlier.
func (m *Model) WaitUntil() time.Time {
	t := m.Now
	if c := m.Run.Cleanup; m.Run.Options.Drill && c != nil && !c.At.IsZero() && c.At.Before(t) {
		t = c.At
	}
	return t
}

// AttemptEnd is when attempt a of node n ended: its end, or for an attempt
// going on, WaitUntil for a gate waiting for approval and OpenUntil for
// any other.
func (m *Model) AttemptEnd(n *Node, a state.Attempt) time.Time {
	switch {
	case !a.Ended.IsZero():
		return a.Ended
	case n.State == state.NodeWaiting || a.Result == state.NodeWaiting:
		return m.WaitUntil()
	default:
		return m.OpenUntil()
	}
}

// Interrupted reports whether the run was recorded as running but its
// process is gone (crash, kill, reboot).
func (m *Model) Interrupted() bool {
	return m.Run.Status == state.RunRunning && !m.Live
}

// lastSeen is the latest time recorded anywhere in the run.
func lastSeen(in Input) time.Time {
	t := in.Run.Created
	late := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	late(in.Run.Updated)
	late(in.Run.Finished)
	for i := range in.Nodes {
		n := &in.Nodes[i]
		late(n.Started)
		late(n.Ended)
		late(n.ApprovedAt)
		for _, a := range n.History {
			late(a.Started)
			late(a.Ended)
		}
	}
	if k := len(in.Journal); k > 0 {
		late(in.Journal[k-1].Time)
	}
	return t
}

// nodes fills m.Nodes in graph order then extra records by id, and
// returns the node indexes dependencies first.
func (m *Model) nodes(recs []state.NodeRecord) []int {
	byID := make(map[string]int, len(recs))
	for i, r := range recs {
		byID[r.ID] = i
	}
	m.Nodes = make([]Node, 0, len(recs))
	held := make(map[string]int, len(recs)) // id → index in m.Nodes
	var topo []int
	if g := m.Graph; g != nil {
		for _, gi := range m.Analysis.Order {
			if _, ok := byID[g.Nodes[gi].ID]; ok {
				topo = append(topo, gi)
			}
		}
		for gi, gn := range g.Nodes {
			k, ok := byID[gn.ID]
			if !ok {
				continue // in the graph but not part of this run
			}
			n := Node{NodeRecord: recs[k], Title: gn.Title, Kind: gn.Kind, Criticality: gn.Criticality,
				Effective: m.Analysis.Effective[gi], Wave: m.Analysis.Level[gi]}
			held[gn.ID] = len(m.Nodes)
			m.Nodes = append(m.Nodes, n)
		}
	}
	var extra []string
	for _, r := range recs {
		if _, ok := held[r.ID]; !ok {
			extra = append(extra, r.ID)
		}
	}
	sort.Strings(extra)
	for _, id := range extra {
		held[id] = len(m.Nodes)
		m.Nodes = append(m.Nodes, Node{NodeRecord: recs[byID[id]]})
	}
	order := make([]int, 0, len(m.Nodes))
	for _, gi := range topo {
		order = append(order, held[m.Graph.Nodes[gi].ID])
	}
	for _, id := range extra {
		order = append(order, held[id])
	}
	until := m.OpenUntil()
	for i := range m.Nodes {
		n := &m.Nodes[i]
		if n.Criticality == "" {
			n.Criticality = graphs.CriticalityNormal
		}
		if n.Effective == "" {
			n.Effective = n.Criticality
		}
		if gi, ok := m.graphIndex(n.ID); ok {
			for _, d := range m.Graph.Nodes[gi].Deps() {
				if _, ok := held[d]; ok && d != n.ID {
					n.Deps = append(n.Deps, d)
				}
			}
		}
		if n.State == state.NodeRunning && !n.Started.IsZero() {
			n.Elapsed = max(0, until.Sub(n.Started))
		}
		if n.State == state.NodeSucceeded && n.ApprovedBy != "" {
			// The gate's "waiting for approval" is history once approved.
			n.LastError = ""
		}
	}
	return order
}

func (m *Model) graphIndex(id string) (int, bool) {
	if m.Graph == nil {
		return 0, false
	}
	return m.Graph.Index(id)
}

// Node returns the node id of the run, or nil.
func (m *Model) Node(id string) *Node {
	for i := range m.Nodes {
		if m.Nodes[i].ID == id {
			return &m.Nodes[i]
		}
	}
	return nil
}

func (m *Model) count() {
	kinds := map[string]*Breakdown{}
	crits := map[string]*Breakdown{}
	m.Vital = Breakdown{Key: string(graphs.CriticalityVital), Counts: newCounts()}
	for i := range m.Nodes {
		n := &m.Nodes[i]
		m.Counts[n.State]++
		m.Total++
		if n.State == state.NodeSucceeded {
			m.Done++
		}
		kind := string(n.Kind)
		if kind == "" {
			kind = "unknown"
		}
		add(kinds, kind, n.State)
		add(crits, string(n.Effective), n.State)
		if n.Effective == graphs.CriticalityVital {
			addTo(&m.Vital, n.State)
		}
	}
	m.Percent = Percent(m.Done, m.Total)
	m.Vital.Percent = Percent(m.Vital.Done, m.Vital.Total)
	var kindOrder, critOrder []string
	for _, k := range graphs.Kinds {
		kindOrder = append(kindOrder, string(k))
	}
	for _, c := range graphs.Criticalities {
		critOrder = append(critOrder, string(c))
	}
	m.ByKind = ordered(kinds, kindOrder)
	m.ByCriticality = ordered(crits, critOrder)
}

func add(m map[string]*Breakdown, key string, st state.NodeState) {
	b := m[key]
	if b == nil {
		b = &Breakdown{Key: key, Counts: newCounts()}
		m[key] = b
	}
	addTo(b, st)
}

func addTo(b *Breakdown, st state.NodeState) {
	b.Total++
	b.Counts[st]++
	if st == state.NodeSucceeded {
		b.Done++
	}
}

// ordered lists the breakdowns in the given order, then any other key
// sorted (an unknown kind still shows).
func ordered(m map[string]*Breakdown, order []string) []Breakdown {
	out := []Breakdown{}
	seen := map[string]bool{}
	keys := append([]string{}, order...)
	rest := make([]string, 0, len(m))
	for k := range m {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	for _, k := range append(keys, rest...) {
		if b := m[k]; b != nil && !seen[k] {
			seen[k] = true
			b.Percent = Percent(b.Done, b.Total)
			out = append(out, *b)
		}
	}
	return out
}

// RunStatus is run's status as it truly is: RunInterrupted for a run
// recorded as running that no live process runs (crash, kill, reboot).
func RunStatus(run state.Run, live bool) state.RunStatus {
	if run.Status == state.RunRunning && !live {
		return state.RunInterrupted
	}
	return run.Status
}

// LastSeen is the last change recorded for run and its node records (its
// journal aside): when a run whose process is gone was last seen.
func LastSeen(run state.Run, nodes []state.NodeRecord) time.Time {
	return lastSeen(Input{Run: run, Nodes: nodes})
}
