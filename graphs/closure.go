package graphs

// Closures over the dependency lists of an Analysis (or any adjacency lists
// by node index): who a node depends on, transitively, and who depends on
// it. Every walk in reprise that follows dependencies further than one step
// goes through here. Each costs O(V+E) at most: a set is a []bool by node
// index, and a node is visited once.

// Ancestors returns the set of starts and every node they depend on,
// transitively (the nodes `--target` runs).
func (a *Analysis) Ancestors(starts ...int) []bool { return Reach(a.Deps, starts, nil) }

// Descendants returns the set of starts and every node that depends on
// them, transitively (the nodes a change or a retry puts back to work).
func (a *Analysis) Descendants(starts ...int) []bool { return Reach(a.Dependents, starts, nil) }

// Reach returns the set of starts and every node reachable from them along
// adj (adj[v] lists the nodes one step from v). When through is not nil, the
// walk continues past a node other than a start only if through returns true
// for it; the node is in the set either way. through is called once per node
// reached, in depth-first order. Indexes out of range are ignored.
func Reach(adj [][]int, starts []int, through func(v int) bool) []bool {
	in := make([]bool, len(adj))
	stack := make([]int, 0, len(starts))
	for _, s := range starts {
		if s >= 0 && s < len(adj) && !in[s] {
			in[s] = true
			stack = append(stack, s)
		}
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range adj[v] {
			if w < 0 || w >= len(adj) || in[w] {
				continue
			}
			in[w] = true
			if through == nil || through(w) {
				stack = append(stack, w)
			}
		}
	}
	return in
}

// Members returns the indexes in set, in increasing order.
func Members(set []bool) []int {
	var out []int
	for i, in := range set {
		if in {
			out = append(out, i)
		}
	}
	return out
}

// The repeated-query form, for checks that ask many times over one graph
// (placeholders): generation stamps instead of a fresh set per question.

// ancestry answers "does node b (transitively) depend on node a" on an
// acyclic graph: a depth-first search from b that never goes below a's
// level (every ancestor of a node sits on a lower level than the node).
type ancestry struct {
	deps  [][]int
	level []int
	stamp []int32
	gen   int32
	stack []int
}

func newAncestry(deps [][]int) *ancestry {
	_, level := kahn(deps, reverse(deps))
	return &ancestry{deps: deps, level: level, stamp: make([]int32, len(deps))}
}

// markDescendants stamps every node that depends on anc, transitively,
// with a new generation: a.stamp[v] == a.gen afterwards says v does.
func (a *ancestry) markDescendants(dependents [][]int, anc int) {
	a.gen++
	a.stack = append(a.stack[:0], anc)
	for len(a.stack) > 0 {
		v := a.stack[len(a.stack)-1]
		a.stack = a.stack[:len(a.stack)-1]
		for _, w := range dependents[v] {
			if a.stamp[w] != a.gen {
				a.stamp[w] = a.gen
				a.stack = append(a.stack, w)
			}
		}
	}
}

func (a *ancestry) isAncestor(anc, node int) bool {
	for _, d := range a.deps[node] {
		if d == anc {
			return true
		}
	}
	a.gen++
	a.stack = append(a.stack[:0], node)
	for len(a.stack) > 0 {
		v := a.stack[len(a.stack)-1]
		a.stack = a.stack[:len(a.stack)-1]
		for _, d := range a.deps[v] {
			if d == anc {
				return true
			}
			if a.stamp[d] == a.gen || a.level[d] <= a.level[anc] {
				continue
			}
			a.stamp[d] = a.gen
			a.stack = append(a.stack, d)
		}
	}
	return false
}
