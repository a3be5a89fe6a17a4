package graphs

import (
	"fmt"
	"sort"
	"strings"
)

// validate checks what the schema walk cannot: unique ids, known plugins,
// dependencies and interface ends that name known nodes, cycles and
// placeholders. It builds g.index.
func (d *decoder) validate() {
	g := d.g
	g.index = make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n.ID == "" {
			continue
		}
		if j, dup := g.index[n.ID]; dup {
			first := d.src[j].id
			d.add(d.src[i].id, n.ID, "id", n.ID, ErrDuplicateID, "duplicate id %s (first defined at line %d, column %d)", quoteShort(n.ID), first.Line, first.Column)
			continue
		}
		g.index[n.ID] = i
	}
	d.orderEvidence()
	d.resolve()
	sugg := &suggester{g: g}
	for i, n := range g.Nodes {
		d.checkPlugin(n, &d.src[i])
		d.checkDeps(i, n, sugg)
		d.checkBetween(i, n, sugg)
	}
	deps := d.resolvedDeps()
	g.deps = deps
	acyclic := d.checkCycles(deps)
	d.checkPlaceholders(deps, acyclic, sugg)
	d.checkZones()
}

// suggester finds the closest known id for an unknown one; it gives up
// after a while so that a file with thousands of bad references stays fast.
type suggester struct {
	g     *Graph
	ids   []string
	calls int
}

func (s *suggester) hint(id string) string {
	s.calls++
	if s.calls > 200 || id == "" {
		return ""
	}
	if s.ids == nil {
		s.ids = make([]string, 0, len(s.g.index))
		for k := range s.g.index {
			s.ids = append(s.ids, k)
		}
		sort.Strings(s.ids)
	}
	if c := closest(id, s.ids); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

func (d *decoder) checkPlugin(n *Node, src *nodeSrc) {
	if n.Plugin == "" || IsBuiltin(n.Plugin) {
		return
	}
	if _, ok := d.g.Plugins[n.Plugin]; ok {
		return
	}
	declared := make([]string, 0, len(d.g.Plugins))
	for k := range d.g.Plugins {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	hint := ""
	if c := closest(n.Plugin, append(append([]string{}, BuiltinPlugins...), declared...)); c != "" {
		hint = fmt.Sprintf("did you mean %q? ", c)
	}
	want := "a built-in: " + strings.Join(BuiltinPlugins, ", ")
	if len(declared) > 0 {
		want += "; declared: " + strings.Join(declared, ", ")
	} else {
		want += ", or declare it under plugins"
	}
	d.add(src.plugin, n.ID, "plugin", n.Plugin, ErrUnknownPlugin, "plugin: undeclared plugin %s (%swant %s)", quoteShort(n.Plugin), hint, want)
}

func (d *decoder) checkDeps(i int, n *Node, sugg *suggester) {
	src := &d.src[i]
	var seen map[string]bool // for long lists; short ones are scanned
	for j, dep := range n.DependsOn {
		pos := src.deps[j]
		switch {
		case dep == n.ID:
			d.add(pos, n.ID, "depends_on", dep, ErrSelfDependency, "depends_on: node depends on itself")
			continue
		case !validID(dep):
			d.add(pos, n.ID, "depends_on", dep, ErrUnknownNode, "depends_on: unknown node %s (not a valid id: %s)", quoteShort(dep), idHelp)
			continue
		}
		if src.depIdx[j] < 0 {
			d.add(pos, n.ID, "depends_on", dep, ErrUnknownNode, "depends_on: unknown node %q%s", dep, sugg.hint(dep))
			continue
		}
		if seen == nil && len(n.DependsOn) > 16 {
			seen = make(map[string]bool, len(n.DependsOn))
		}
		dup := false
		if seen != nil {
			dup = seen[dep]
			seen[dep] = true
		} else {
			for k := 0; k < j; k++ {
				if n.DependsOn[k] == dep {
					dup = true
					break
				}
			}
		}
		if dup {
			d.add(pos, n.ID, "depends_on", dep, ErrSchema, "depends_on: %q is listed twice", dep)
		}
	}
}

func (d *decoder) checkBetween(i int, n *Node, sugg *suggester) {
	src := &d.src[i]
	if n.Kind != KindInterface {
		if n.Between != nil && validKind(n.Kind) {
			d.add(src.between, n.ID, "between", "", ErrInterfaceEnds, "between: only interface nodes have ends (this node's kind is %s; use depends_on)", n.Kind)
		}
		return
	}
	if src.badEnds {
		return
	}
	pos := src.between
	if n.Between == nil {
		pos = n.Pos
	}
	if len(n.Between) != 2 {
		d.add(pos, n.ID, "between", "", ErrInterfaceEnds, "between: an interface needs exactly two distinct ends, got %d (want between: [a, b])", len(n.Between))
		return
	}
	if n.Between[0] == n.Between[1] {
		d.add(src.ends[1], n.ID, "between", n.Between[1], ErrInterfaceEnds, "between: both ends are %q (want two distinct nodes)", n.Between[1])
		return
	}
	for j, end := range n.Between {
		if end == n.ID {
			d.add(src.ends[j], n.ID, "between", end, ErrSelfDependency, "between: an interface cannot be its own end")
			continue
		}
		if src.endIdx[j] < 0 {
			d.add(src.ends[j], n.ID, "between", end, ErrUnknownNode, "between: unknown node %s%s", quoteShort(end), sugg.hint(end))
		}
	}
}

// resolve looks up every dependency and interface end once.
func (d *decoder) resolve() {
	lookup := func(ids []string) []int32 {
		out := make([]int32, len(ids))
		for j, id := range ids {
			out[j] = -1
			if k, ok := d.g.index[id]; ok {
				out[j] = int32(k)
			}
		}
		return out
	}
	for i, n := range d.g.Nodes {
		d.src[i].depIdx = lookup(n.DependsOn)
		d.src[i].endIdx = lookup(n.Between)
		d.src[i].afterIdx = lookup(n.After)
	}
}

// resolvedDeps is effectiveDeps from the indexes resolve found.
func (d *decoder) resolvedDeps() [][]int {
	total := 0
	for i := range d.src {
		total += len(d.src[i].depIdx) + len(d.src[i].endIdx) + len(d.src[i].afterIdx)
	}
	backing := make([]int, 0, total)
	out := make([][]int, len(d.src))
	mark := make([]int32, len(d.src))
	for i := range d.src {
		start := len(backing)
		for _, list := range [3][]int32{d.src[i].depIdx, d.src[i].endIdx, d.src[i].afterIdx} {
			for _, j := range list {
				if j < 0 || int(j) == i || mark[j] == int32(i+1) {
					continue
				}
				mark[j] = int32(i + 1)
				backing = append(backing, int(j))
			}
		}
		out[i] = backing[start:len(backing):len(backing)]
	}
	return out
}

// effectiveDeps returns, by node index, the indexes of each node's known
// effective dependencies (Node.Deps()), leaving out self-dependencies,
// unknown ids and later duplicates of an id. All slices share one backing
// array.
func effectiveDeps(g *Graph) [][]int {
	if g.deps != nil && len(g.deps) == len(g.Nodes) {
		return g.deps
	}
	if g.index == nil { // a Graph built by hand
		g.buildIndex()
	}
	total := 0
	for _, n := range g.Nodes {
		total += len(n.DependsOn) + len(n.Between) + len(n.After)
	}
	backing := make([]int, 0, total)
	out := make([][]int, len(g.Nodes))
	mark := make([]int32, len(g.Nodes)) // mark[j] == i+1: j already listed for i
	for i, n := range g.Nodes {
		start := len(backing)
		for _, list := range [3][]string{n.DependsOn, n.Between, n.After} {
			for _, dep := range list {
				j, ok := g.index[dep]
				if !ok || j == i || mark[j] == int32(i+1) {
					continue
				}
				mark[j] = int32(i + 1)
				backing = append(backing, j)
			}
		}
		out[i] = backing[start:len(backing):len(backing)]
	}
	return out
}
