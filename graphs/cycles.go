package graphs

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dominikbraun/graph"
)

// stronglyConnected returns the strongly connected components of more than
// one node among members (nil: every node), each sorted by index, in order
// of their smallest index. The graph library finds them (Tarjan, O(V+E) on
// its adjacency maps) on a view of the members.
func stronglyConnected(deps [][]int, members []int) [][]int {
	all, err := graph.StronglyConnectedComponents(libraryView(deps, members))
	if err != nil { // the view is directed and never fails to list itself
		panic(fmt.Sprintf("graphs: strongly connected components: %v", err))
	}
	var comps [][]int
	for _, c := range all {
		if len(c) > 1 {
			for i := range c {
				c[i]-- // keys are indexes plus one
			}
			slices.Sort(c)
			comps = append(comps, c)
		}
	}
	sort.Slice(comps, func(a, b int) bool { return comps[a][0] < comps[b][0] })
	return comps
}

// knotted returns the nodes that may be on a cycle, given a topological
// order of the others (kahn's short order): of the nodes the order left out
// (on a cycle, or depending on one), those that some other left-out node
// still depends on once the ones nothing depends on are peeled off, again
// and again. On a graph with a few small cycles that leaves about the
// cycles, whatever the graph's size.
func knotted(deps [][]int, order []int) []int {
	out := make([]bool, len(deps)) // left out by the order, not yet peeled
	for v := range out {
		out[v] = true
	}
	for _, v := range order {
		out[v] = false
	}
	dependents := make([]int32, len(deps)) // among the left-out nodes
	for v, ds := range deps {
		if out[v] {
			for _, d := range ds {
				if out[d] {
					dependents[d]++
				}
			}
		}
	}
	var peel []int
	for v := range deps {
		if out[v] && dependents[v] == 0 {
			peel = append(peel, v)
		}
	}
	for len(peel) > 0 {
		v := peel[len(peel)-1]
		peel = peel[:len(peel)-1]
		out[v] = false
		for _, d := range deps[v] {
			if out[d] {
				if dependents[d]--; dependents[d] == 0 {
					peel = append(peel, d)
				}
			}
		}
	}
	var rest []int
	for v, ok := range out {
		if ok {
			rest = append(rest, v)
		}
	}
	return rest
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
	order, _ := kahn(deps, reverse(deps))
	if len(order) == len(deps) {
		return true
	}
	comps := stronglyConnected(deps, knotted(deps, order))
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
