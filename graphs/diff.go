package graphs

import (
	"reflect"
	"slices"
	"sort"
)

// Diff says how two versions of a graph differ, by node id (each list
// sorted), and which plugin declarations (`plugins:` entries: path,
// sha256 or max_parallel) were added, removed or changed, by name.
type Diff struct {
	Added, Removed, Changed []string
	Plugins                 []string
}

// DiffGraphs compares old and new node by node. A node is Changed when any
// of its fields differs: kind, plugin, dependencies (order aside), between,
// with, timeout, retries, estimate, criticality or title.
func DiffGraphs(old, new *Graph) Diff {
	var d Diff
	for _, n := range new.Nodes {
		o, ok := old.Node(n.ID)
		switch {
		case !ok:
			d.Added = append(d.Added, n.ID)
		case !sameNode(o, n):
			d.Changed = append(d.Changed, n.ID)
		}
	}
	for _, o := range old.Nodes {
		if _, ok := new.Node(o.ID); !ok {
			d.Removed = append(d.Removed, o.ID)
		}
	}
	for name, p := range new.Plugins {
		if o, ok := old.Plugins[name]; !ok || o.Path != p.Path || o.SHA256 != p.SHA256 || o.MaxParallel != p.MaxParallel {
			d.Plugins = append(d.Plugins, name)
		}
	}
	for name := range old.Plugins {
		if _, ok := new.Plugins[name]; !ok {
			d.Plugins = append(d.Plugins, name)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	sort.Strings(d.Plugins)
	return d
}

func sameNode(a, b *Node) bool {
	if a.Kind != b.Kind || a.Plugin != b.Plugin || a.Title != b.Title ||
		a.Estimate != b.Estimate || a.Timeout != b.Timeout ||
		a.Criticality.Rank() != b.Criticality.Rank() {
		return false
	}
	if (a.Retries == nil) != (b.Retries == nil) || (a.Retries != nil && *a.Retries != *b.Retries) {
		return false
	}
	if !sameSet(a.DependsOn, b.DependsOn) || !sameSet(a.Between, b.Between) {
		return false
	}
	if len(a.With) == 0 && len(b.With) == 0 {
		return true
	}
	return reflect.DeepEqual(a.With, b.With)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}
