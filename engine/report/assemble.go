package report

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Options tune Build. The zero value is usable.
type Options struct {
	// Now is the generation time (zero: time.Now()). Attempts that have not
	// ended are drawn up to Now (in a drill, up to its recorded clean-up if
	// that is earlier).
	Now time.Time
	// Location is the time zone times are shown in by HTML and Markdown
	// (nil: UTC). JSON always carries RFC 3339 times with their offset.
	Location *time.Location
}

// assemble completes a report whose Run, Nodes (ID, Title, Kind,
// Criticality, Deps, State, Attempts, LastError), Decisions and Journal are
// set: it computes waves, effective criticality, what blocks what, the
// failures, the time span and the summary. It runs in O(V+E) plus sorting.
func assemble(r *Report, opts Options) {
	r.Schema = SchemaVersion
	r.Generated = opts.Now
	if r.Generated.IsZero() {
		r.Generated = time.Now()
	}
	r.loc = opts.Location
	if r.loc == nil {
		r.loc = time.UTC
	}
	if r.Nodes == nil {
		r.Nodes = []Node{} // JSON: [], never null
	}
	idx := make(map[string]int, len(r.Nodes))
	for i := range r.Nodes {
		idx[r.Nodes[i].ID] = i
		if r.Nodes[i].Criticality == "" {
			r.Nodes[i].Criticality = string(graphs.CriticalityNormal)
		}
	}
	// Drop dependencies on nodes the run does not hold (a removed node).
	for i := range r.Nodes {
		deps := r.Nodes[i].Deps[:0:0]
		for _, d := range r.Nodes[i].Deps {
			if _, ok := idx[d]; ok && d != r.Nodes[i].ID {
				deps = append(deps, d)
			}
		}
		r.Nodes[i].Deps = deps
	}
	order := topoOrder(r.Nodes, idx)
	for _, i := range order { // dependencies first
		w := 0
		for _, d := range r.Nodes[i].Deps {
			w = max(w, r.Nodes[idx[d]].Wave+1)
		}
		r.Nodes[i].Wave = w
	}
	rank := make([]int, len(r.Nodes))
	for i := range r.Nodes {
		rank[i] = graphs.Criticality(r.Nodes[i].Criticality).Rank()
	}
	for k := len(order) - 1; k >= 0; k-- { // dependents first
		i := order[k]
		for _, d := range r.Nodes[i].Deps {
			j := idx[d]
			rank[j] = max(rank[j], rank[i])
		}
	}
	for i := range r.Nodes {
		r.Nodes[i].Effective = string(criticalityOfRank(rank[i]))
		setSpan(&r.Nodes[i])
	}
	blockers(r, idx, order)
	r.Failures = failures(r)
	r.Run.Start, r.Run.End = span(r)
	r.Summary = summarize(r.Nodes)
	if r.Run.Drill {
		r.Summary.Headline = "Drill: " + r.Summary.Headline
	}
	sort.SliceStable(r.Decisions, func(a, b int) bool { return r.Decisions[a].At.Before(r.Decisions[b].At) })
}

// topoOrder orders node indexes dependencies first (Kahn). Nodes caught in a
// cycle, which a validated graph never has, are appended in input order.
func topoOrder(nodes []Node, idx map[string]int) []int {
	indeg := make([]int, len(nodes))
	dependents := make([][]int, len(nodes))
	for i := range nodes {
		for _, d := range nodes[i].Deps {
			indeg[i]++
			dependents[idx[d]] = append(dependents[idx[d]], i)
		}
	}
	order := make([]int, 0, len(nodes))
	for i := range nodes {
		if indeg[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		for _, j := range dependents[order[k]] {
			if indeg[j]--; indeg[j] == 0 {
				order = append(order, j)
			}
		}
	}
	if len(order) < len(nodes) {
		seen := make([]bool, len(nodes))
		for _, i := range order {
			seen[i] = true
		}
		for i := range nodes {
			if !seen[i] {
				order = append(order, i)
			}
		}
	}
	return order
}

func criticalityOfRank(r int) graphs.Criticality {
	for _, c := range graphs.Criticalities {
		if c.Rank() == r {
			return c
		}
	}
	return graphs.CriticalityNormal
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

// blockers fills BlockedBy of every blocked node with the failed nodes that
// stop it: the failed ancestors reached through nodes that did not fail
// themselves (a failure further up is the cause of that failure, not of
// this block). Sets are shared while a node inherits from a single
// dependency, which keeps long chains linear.
func blockers(r *Report, idx map[string]int, order []int) {
	failedAbove := make([]map[string]bool, len(r.Nodes))
	for _, i := range order {
		var set map[string]bool
		shared := false // set is a dependency's own map: copy before adding
		add := func(from map[string]bool, id string) {
			switch {
			case set == nil && from != nil:
				set, shared = from, true
				return
			case set == nil:
				set = map[string]bool{}
			case shared:
				cp := make(map[string]bool, len(set)+1)
				for k := range set {
					cp[k] = true
				}
				set, shared = cp, false
			}
			for k := range from {
				set[k] = true
			}
			if id != "" {
				set[id] = true
			}
		}
		for _, d := range r.Nodes[i].Deps {
			j := idx[d]
			if r.Nodes[j].State == string(state.NodeFailed) {
				add(nil, d)
			} else if len(failedAbove[j]) > 0 {
				add(failedAbove[j], "")
			}
		}
		failedAbove[i] = set
		if r.Nodes[i].State == string(state.NodeBlocked) && len(set) > 0 {
			r.Nodes[i].BlockedBy = sortedKeys(set)
		}
	}
}

func failures(r *Report) []Failure {
	blocks := map[string][]string{}
	for _, n := range r.Nodes {
		for _, f := range n.BlockedBy {
			blocks[f] = append(blocks[f], n.ID)
		}
	}
	out := []Failure{}
	for _, n := range r.Nodes {
		if n.State != string(state.NodeFailed) {
			continue
		}
		f := Failure{NodeID: n.ID, Title: n.Title, Kind: n.Kind, Effective: n.Effective,
			Attempts: len(n.Attempts), At: n.Ended, LastError: n.LastError, Blocks: blocks[n.ID]}
		if f.LastError == "" && len(n.Attempts) > 0 {
			f.LastError = n.Attempts[len(n.Attempts)-1].Error
		}
		sort.Strings(f.Blocks)
		out = append(out, f)
	}
	sort.SliceStable(out, func(a, b int) bool {
		ra, rb := graphs.Criticality(out[a].Effective).Rank(), graphs.Criticality(out[b].Effective).Rank()
		if ra != rb {
			return ra > rb
		}
		return out[a].NodeID < out[b].NodeID
	})
	return out
}

// openUntil is when attempts that have not ended are drawn to: the
// generation time or, for a drill whose clean-up was recorded before, the
// clean-up (nothing of the exercise goes on after it).
func (r *Report) openUntil() time.Time {
	if c := r.Run.Cleanup; r.Run.Drill && c != nil && !c.At.IsZero() && c.At.Before(r.Generated) {
		return c.At
	}
	return r.Generated
}

// span returns the first start and last end of every attempt; attempts
// still going on end at openUntil.
func span(r *Report) (start, end time.Time) {
	for _, n := range r.Nodes {
		for _, a := range n.Attempts {
			if a.Started.IsZero() {
				continue
			}
			if start.IsZero() || a.Started.Before(start) {
				start = a.Started
			}
			e := a.Ended
			if e.IsZero() {
				e = r.openUntil()
			}
			if e.After(end) {
				end = e
			}
		}
	}
	for _, d := range r.Decisions {
		// A drill's clean-up comes after the run, maybe days later: it
		// does not stretch the run's span.
		if !d.cleanup && !d.At.IsZero() && !start.IsZero() && d.At.After(end) {
			end = d.At
		}
	}
	return start, end
}

// restored reports whether a node in state s counts as back.
func restored(s string) bool { return state.NodeState(s).Done() }

func newStates() map[string]int {
	m := make(map[string]int, len(state.NodeStates))
	for _, s := range state.NodeStates {
		m[string(s)] = 0
	}
	return m
}

func summarize(nodes []Node) Summary {
	s := Summary{Total: len(nodes), States: newStates()}
	kinds := map[string]*Breakdown{}
	crits := map[string]*Breakdown{}
	add := func(m map[string]*Breakdown, name string, n Node) {
		b := m[name]
		if b == nil {
			b = &Breakdown{Name: name, States: newStates()}
			m[name] = b
		}
		b.Total++
		b.States[n.State]++
		if restored(n.State) {
			b.Restored++
		}
	}
	for _, n := range nodes {
		s.States[n.State]++
		if restored(n.State) {
			s.Restored++
		}
		add(kinds, n.Kind, n)
		add(crits, n.Effective, n)
		if n.Criticality == string(graphs.CriticalityVital) {
			s.Vital.Total++
			if restored(n.State) {
				s.Vital.Restored++
			}
		}
	}
	s.Vital.Percent = percent(s.Vital.Restored, s.Vital.Total)
	var kindOrder, critOrder []string
	for _, k := range graphs.Kinds {
		kindOrder = append(kindOrder, string(k))
	}
	for _, c := range graphs.Criticalities {
		critOrder = append(critOrder, string(c))
	}
	s.ByKind = ordered(kinds, kindOrder)
	s.ByCriticality = ordered(crits, critOrder)
	s.Headline = headline(s)
	return s
}

// ordered lists the breakdowns in the given order, then any other name
// sorted (an unknown kind still shows).
func ordered(m map[string]*Breakdown, order []string) []Breakdown {
	out := []Breakdown{}
	done := map[string]bool{}
	for _, name := range order {
		if b := m[name]; b != nil {
			b.Percent = percent(b.Restored, b.Total)
			out = append(out, *b)
			done[name] = true
		}
	}
	for _, name := range sortedKeys(m) {
		if !done[name] {
			b := m[name]
			b.Percent = percent(b.Restored, b.Total)
			out = append(out, *b)
		}
	}
	return out
}

func percent(part, total int) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(float64(part)*1000/float64(total)) / 10
}

func headline(s Summary) string {
	if s.Vital.Total > 0 {
		return fmt.Sprintf("%d %% of vital services back (%d of %d)",
			floorPercent(s.Vital.Restored, s.Vital.Total), s.Vital.Restored, s.Vital.Total)
	}
	return fmt.Sprintf("%d %% of the nodes back (%d of %d); no node is declared vital",
		floorPercent(s.Restored, s.Total), s.Restored, s.Total)
}

// floorPercent rounds down, so that a headline never says 100 % while one
// node is still missing.
func floorPercent(part, total int) int {
	if total == 0 {
		return 0
	}
	return part * 100 / total
}

// formatPercent writes a percentage without a useless decimal: 83, 83.3.
func formatPercent(p float64) string {
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.1f", p)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
