package graphs

import (
	"fmt"
	"sort"
	"strings"
)

// stronglyConnected returns the strongly connected components of more than
// one node (Tarjan's algorithm, iterative, O(V+E)), each sorted by index,
// in order of their smallest index.
func stronglyConnected(deps [][]int) [][]int {
	n := len(deps)
	index := make([]int32, n)
	low := make([]int32, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	type frame struct{ v, edge int }
	var call []frame
	var comps [][]int
	next := int32(0)
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call = append(call, frame{v: root})
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			top := &call[len(call)-1]
			v := top.v
			if top.edge < len(deps[v]) {
				w := deps[v][top.edge]
				top.edge++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{v: w})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				if p := call[len(call)-1].v; low[v] < low[p] {
					low[p] = low[v]
				}
			}
			if low[v] == index[v] {
				k := len(stack) - 1
				for stack[k] != v {
					k--
				}
				members := stack[k:]
				for _, m := range members {
					onStack[m] = false
				}
				if len(members) > 1 {
					comp := append([]int(nil), members...)
					sort.Ints(comp)
					comps = append(comps, comp)
				}
				stack = stack[:k]
			}
		}
	}
	sort.Slice(comps, func(a, b int) bool { return comps[a][0] < comps[b][0] })
	return comps
}

// cycleThrough returns a shortest cycle through start inside comp, as
// indexes start, …, start (breadth-first search over deps, restricted to
// the component's members).
func cycleThrough(deps [][]int, comp []int, start int) []int {
	in := make(map[int]int, len(comp)) // member → parent on the BFS tree (-1 unset)
	for _, m := range comp {
		in[m] = -1
	}
	queue := []int{start}
	in[start] = start
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range deps[v] {
			p, member := in[w]
			if !member {
				continue
			}
			if w == start {
				path := []int{start}
				for x := v; x != start; x = in[x] {
					path = append(path, x)
				}
				// path is start, v, parent(v) …: reverse all but the head.
				for a, b := 1, len(path)-1; a < b; a, b = a+1, b-1 {
					path[a], path[b] = path[b], path[a]
				}
				return append(path, start)
			}
			if p == -1 {
				in[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start, start} // unreachable for a real component
}

// checkCycles reports one problem per strongly connected component; it
// returns true when the graph is acyclic.
func (d *decoder) checkCycles(deps [][]int) bool {
	comps := stronglyConnected(deps)
	g := d.g
	for _, comp := range comps {
		start := comp[0]
		for _, m := range comp {
			if g.Nodes[m].ID < g.Nodes[start].ID {
				start = m
			}
		}
		path := cycleThrough(deps, comp, start)
		names := make([]string, len(path))
		onPath := make(map[int]bool, len(path))
		for i, v := range path {
			names[i] = g.Nodes[v].ID
			onPath[v] = true
		}
		var others []string
		for _, m := range comp {
			if !onPath[m] {
				others = append(others, g.Nodes[m].ID)
			}
		}
		sort.Strings(others)
		msg := fmt.Sprintf("dependency cycle: %s (a -> b: a depends on b)", strings.Join(names, " -> "))
		if len(others) > 0 {
			const show = 10
			more := ""
			if len(others) > show {
				more = fmt.Sprintf(" and %d more", len(others)-show)
				others = others[:show]
			}
			msg += fmt.Sprintf("; %d nodes form this knot, also %s%s", len(comp), strings.Join(others, ", "), more)
		}
		pos, field := d.edgePos(start, names[1])
		d.add(pos, names[0], field, names[1], ErrCycle, "%s", msg)
	}
	return len(comps) == 0
}

// edgePos returns where node i names dependency dep, and in which field.
func (d *decoder) edgePos(i int, dep string) (Position, string) {
	n, src := d.g.Nodes[i], &d.src[i]
	for j, x := range n.DependsOn {
		if x == dep && j < len(src.deps) {
			return src.deps[j], "depends_on"
		}
	}
	for j, x := range n.Between {
		if x == dep && j < len(src.ends) {
			return src.ends[j], "between"
		}
	}
	for _, x := range n.After {
		if x == dep && len(src.clean.wipes) > 0 {
			return src.clean.wipes[0], "wipes"
		}
	}
	return n.Pos, ""
}
