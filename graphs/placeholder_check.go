package graphs

import "fmt"

// checkPlaceholders reports malformed placeholders and node references
// that are unknown or not ancestors of the node using them. deps must be
// acyclic for the ancestor check, which is skipped otherwise (the cycle is
// reported already).
func (d *decoder) checkPlaceholders(deps [][]int, acyclic bool, sugg *suggester) {
	var anc *ancestry
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
				case acyclic:
					if anc == nil {
						anc = newAncestry(deps)
					}
					if !anc.isAncestor(j, i) {
						d.add(v.pos, n.ID, path, v.s, ErrPlaceholder, "%s: %s uses node %q, which %q does not depend on (add it to depends_on, directly or through a dependency)", path, ref, ref.Node, n.ID)
					}
				}
			}
		})
	}
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
