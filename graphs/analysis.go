package graphs

import (
	"sort"
	"time"
)

// Analysis is what plan and the scheduler need to know about a valid
// graph, by node index (the order of Graph.Nodes). Build it with Analyze;
// it is read-only afterwards.
type Analysis struct {
	// Deps and Dependents are each node's effective dependencies
	// (Node.Deps(): depends_on and between) and the nodes that depend on it.
	Deps, Dependents [][]int
	// Order is a topological order, dependencies first: the waves one
	// after the other.
	Order []int
	// Waves: wave k holds the nodes whose longest chain of dependencies has
	// k links (wave 0: nodes without dependencies), ids sorted in each.
	Waves [][]int
	// Effective is each node's effective criticality: the highest of its
	// own and that of every node that depends on it, transitively.
	Effective []Criticality
	// Remaining is the longest estimate-weighted path from the node to a
	// node nothing depends on, the node's own estimate included.
	Remaining []time.Duration
	// CriticalPath is the longest estimate-weighted chain of dependencies,
	// dependencies first; CriticalDuration is the sum of its estimates.
	CriticalPath     []int
	CriticalDuration time.Duration
	// Level is each node's wave number.
	Level []int

	rank []int // each node's position in id order
}

// Analyze computes order, waves, effective criticality and critical path in
// O(V+E) (plus sorting ids within waves). g must come from Load, Parse or
// Subset: valid, hence acyclic.
func Analyze(g *Graph) *Analysis {
	deps := effectiveDeps(g)
	dependents := reverse(deps)
	_, level := kahn(deps, dependents)
	a := &Analysis{Deps: deps, Dependents: dependents, Level: level}
	n := len(g.Nodes)

	rank := idRanks(g)
	a.rank = rank
	maxLevel := -1
	for _, l := range level {
		if l > maxLevel {
			maxLevel = l
		}
	}
	counts := make([]int, maxLevel+1)
	for _, l := range level {
		counts[l]++
	}
	byID := make([]int, n)
	for i := range byID {
		byID[i] = i
	}
	sort.Slice(byID, func(x, y int) bool { return rank[byID[x]] < rank[byID[y]] })
	backing := make([]int, 0, n)
	start := make([]int, maxLevel+2)
	for l := 0; l <= maxLevel; l++ {
		start[l+1] = start[l] + counts[l]
	}
	backing = backing[:n]
	fill := append([]int(nil), start[:maxLevel+1]...)
	for _, v := range byID {
		l := level[v]
		backing[fill[l]] = v
		fill[l]++
	}
	a.Waves = make([][]int, maxLevel+1)
	for l := range a.Waves {
		a.Waves[l] = backing[start[l]:start[l+1]:start[l+1]]
	}
	a.Order = backing

	a.Effective = make([]Criticality, n)
	eff := make([]int, n)
	a.Remaining = make([]time.Duration, n)
	for k := n - 1; k >= 0; k-- {
		v := a.Order[k]
		e := g.Nodes[v].Criticality.Rank()
		var longest time.Duration
		for _, w := range dependents[v] {
			if eff[w] > e {
				e = eff[w]
			}
			if a.Remaining[w] > longest {
				longest = a.Remaining[w]
			}
		}
		eff[v] = e
		a.Effective[v] = criticalityOfRank(e)
		a.Remaining[v] = g.Nodes[v].Estimate + longest
	}
	a.CriticalPath, a.CriticalDuration = criticalPath(a, rank)
	return a
}

// criticalPath follows the longest remaining path from the best start.
// Ties go to the node with the smaller id, so the result is deterministic.
func criticalPath(a *Analysis, rank []int) ([]int, time.Duration) {
	if len(a.Order) == 0 {
		return nil, 0
	}
	better := func(x, y int) bool { // is x a better next step than y
		if a.Remaining[x] != a.Remaining[y] {
			return a.Remaining[x] > a.Remaining[y]
		}
		return rank[x] < rank[y]
	}
	cur := -1
	for _, v := range a.Waves[0] { // a longest path starts without dependencies
		if cur < 0 || better(v, cur) {
			cur = v
		}
	}
	total := a.Remaining[cur]
	path := []int{cur}
	// A valid graph is acyclic; the bound only keeps a hand-built cyclic
	// one from looping forever.
	for len(a.Dependents[cur]) > 0 && len(path) <= len(a.Order) {
		next := -1
		for _, w := range a.Dependents[cur] {
			if next < 0 || better(w, next) {
				next = w
			}
		}
		cur = next
		path = append(path, cur)
	}
	return path, total
}

func criticalityOfRank(r int) Criticality {
	switch r {
	case 3:
		return CriticalityVital
	case 2:
		return CriticalityHigh
	case 0:
		return CriticalityLow
	}
	return CriticalityNormal
}

// idRanks returns each node's position in the id-sorted order.
func idRanks(g *Graph) []int {
	idx := make([]int, len(g.Nodes))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(x, y int) bool { return g.Nodes[idx[x]].ID < g.Nodes[idx[y]].ID })
	rank := make([]int, len(idx))
	for r, v := range idx {
		rank[v] = r
	}
	return rank
}

// reverse returns the dependents lists of deps, in one backing array.
func reverse(deps [][]int) [][]int {
	counts := make([]int, len(deps))
	total := 0
	for _, ds := range deps {
		for _, d := range ds {
			counts[d]++
		}
		total += len(ds)
	}
	backing := make([]int, total)
	out := make([][]int, len(deps))
	off := 0
	for v, c := range counts {
		out[v] = backing[off : off : off+c]
		off += c
	}
	for v, ds := range deps {
		for _, d := range ds {
			out[d] = append(out[d], v)
		}
	}
	return out
}

// kahn returns a topological order (dependencies first) and each node's
// level (longest chain of dependencies). On a cyclic graph the order is
// short: it leaves out the nodes on or after a cycle.
func kahn(deps, dependents [][]int) (order, level []int) {
	n := len(deps)
	pending := make([]int, n)
	level = make([]int, n)
	order = make([]int, 0, n)
	for v, ds := range deps {
		pending[v] = len(ds)
		if len(ds) == 0 {
			order = append(order, v)
		}
	}
	for k := 0; k < len(order); k++ {
		v := order[k]
		for _, w := range dependents[v] {
			if level[v]+1 > level[w] {
				level[w] = level[v] + 1
			}
			pending[w]--
			if pending[w] == 0 {
				order = append(order, w)
			}
		}
	}
	return order, level
}
