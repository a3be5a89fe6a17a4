package graphs

import (
	"fmt"
	"sort"
)

// checkPlaceholders reports malformed placeholders and node references
// that are unknown or not ancestors of the node using them. deps must be
// acyclic for the ancestor check, which is skipped otherwise (the cycle is
// reported already).
func (d *decoder) checkPlaceholders(deps [][]int, acyclic bool, sugg *suggester) {
	var pending []refCheck
	for i := range d.src {
		w := d.src[i].with
		if w == nil {
			continue
		}
		n := d.g.Nodes[i]
		d.walkStrings(w, "with", func(v *value, path string) {
			parts, err := parseTemplate(v.s)
			if err != nil {
				d.add(v.pos, n.ID, path, v.s, ErrPlaceholder, "%s: %v", path, err)
				return
			}
			for _, p := range parts {
				if p.ref == nil || p.ref.Node == "" {
					continue
				}
				ref := *p.ref
				j, ok := d.g.index[ref.Node]
				switch {
				case ref.Node == n.ID:
					d.add(v.pos, n.ID, path, v.s, ErrPlaceholder, "%s: %s refers to the node's own outputs (want an output of a node it depends on)", path, ref)
				case !ok:
					d.add(v.pos, n.ID, path, v.s, ErrUnknownNode, "%s: %s names unknown node %q%s", path, ref, ref.Node, sugg.hint(ref.Node))
				case acyclic && !containsInt(deps[i], j):
					pending = append(pending, refCheck{node: i, anc: j, v: v, path: path, ref: ref})
				}
			}
		})
	}
	d.checkAncestors(deps, pending)
}

// refCheck is a reference to a node that is not a direct dependency: it
// must be an ancestor.
type refCheck struct {
	node, anc int
	v         *value
	path      string
	ref       Ref
}

// checkAncestors answers every pending reference. References to the same
// node are grouped: a node many others refer to (an AD domain, a database
// host) gets its descendants marked once, in O(V+E), instead of one search
// per reference; the others get a depth-first search bounded by levels.
func (d *decoder) checkAncestors(deps [][]int, pending []refCheck) {
	if len(pending) == 0 {
		return
	}
	sort.SliceStable(pending, func(x, y int) bool { return pending[x].anc < pending[y].anc })
	anc := newAncestry(deps)
	var dependents [][]int
	for start := 0; start < len(pending); {
		end := start
		for end < len(pending) && pending[end].anc == pending[start].anc {
			end++
		}
		group := pending[start:end]
		var isAnc func(rc refCheck) bool
		if len(group) >= 4 {
			if dependents == nil {
				dependents = reverse(deps)
			}
			anc.markDescendants(dependents, group[0].anc)
			isAnc = func(rc refCheck) bool { return anc.stamp[rc.node] == anc.gen }
		} else {
			isAnc = func(rc refCheck) bool { return anc.isAncestor(rc.anc, rc.node) }
		}
		for _, rc := range group {
			if !isAnc(rc) {
				n := d.g.Nodes[rc.node]
				d.add(rc.v.pos, n.ID, rc.path, rc.v.s, ErrPlaceholder, "%s: %s uses node %q, which %q does not depend on (add it to depends_on, directly or through a dependency)", rc.path, rc.ref, rc.ref.Node, n.ID)
			}
		}
		start = end
	}
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// walkStrings calls fn for every string value (not keys) under v.
func (d *decoder) walkStrings(v *value, path string, fn func(v *value, path string)) {
	switch v.kind {
	case vStr:
		fn(v, path)
	case vSeq:
		for i := range v.items {
			d.walkStrings(&v.items[i], fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case vMap:
		for i := 0; i+1 < len(v.items); i += 2 {
			d.walkStrings(&v.items[i+1], path+"."+v.items[i].s, fn)
		}
	}
}
