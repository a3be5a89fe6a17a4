package graphs

import (
	"reflect"
	"slices"
	"sort"
)

// Diff says how two versions of a graph differ, by node id (each list
// sorted), and which plugin declarations (`plugins:` entries: path,
// sha256 or max_parallel) were added, removed or changed, by name.
//
// Changed lists the nodes whose step changed: what the step does (plugin,
// with, restore_points, scan, wipes, evidence) or what it runs after
// (depends_on, between). Metadata lists the
// nodes where only other fields changed (title, kind, estimate, criticality,
// timeout, retries, zone, owner, contact, runbook, rto, approvals: anything
// that does not change the step); such an edit never makes a step run
// again. Restore points, scan, wipes and evidence count as step changes:
// they change what the step restores or destroys. Fields holds, for every
// node of either list, the names of the fields that differ, as written in
// a graph file.
type Diff struct {
	Added, Removed, Changed []string
	Metadata                []string
	Fields                  map[string][]string
	Plugins                 []string
}

// DiffGraphs compares old and new node by node.
func DiffGraphs(old, new *Graph) Diff {
	d := Diff{Fields: map[string][]string{}}
	for _, n := range new.Nodes {
		o, ok := old.Node(n.ID)
		if !ok {
			d.Added = append(d.Added, n.ID)
			continue
		}
		step, meta := nodeChanges(o, n)
		switch {
		case len(step) > 0:
			d.Changed = append(d.Changed, n.ID)
			d.Fields[n.ID] = append(step, meta...)
		case len(meta) > 0:
			d.Metadata = append(d.Metadata, n.ID)
			d.Fields[n.ID] = meta
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
	sort.Strings(d.Metadata)
	sort.Strings(d.Plugins)
	return d
}

// nodeChanges names the fields that differ between two versions of a node:
// those that change its step, and the others.
func nodeChanges(a, b *Node) (step, meta []string) {
	if a.Plugin != b.Plugin {
		step = append(step, "plugin")
	}
	if !sameWith(a.With, b.With) {
		step = append(step, "with")
	}
	if !sameSet(a.DependsOn, b.DependsOn) {
		step = append(step, "depends_on")
	}
	if !sameSet(a.Between, b.Between) {
		step = append(step, "between")
	}
	// What the step restores from, scans, wipes or preserves.
	if !reflect.DeepEqual(a.RestorePoints, b.RestorePoints) {
		step = append(step, "restore_points")
	}
	if !slices.Equal(a.Scan, b.Scan) {
		step = append(step, "scan")
	}
	if !sameSet(a.Wipes, b.Wipes) {
		step = append(step, "wipes")
	}
	if a.Evidence != b.Evidence || !sameSet(a.Preserves, b.Preserves) {
		step = append(step, "evidence")
	}
	if a.Kind != b.Kind {
		meta = append(meta, "kind")
	}
	if a.Title != b.Title {
		meta = append(meta, "title")
	}
	if a.Estimate != b.Estimate {
		meta = append(meta, "estimate")
	}
	if a.Criticality.Rank() != b.Criticality.Rank() {
		meta = append(meta, "criticality")
	}
	if a.Timeout != b.Timeout {
		meta = append(meta, "timeout")
	}
	if (a.Retries == nil) != (b.Retries == nil) || (a.Retries != nil && *a.Retries != *b.Retries) {
		meta = append(meta, "retries")
	}
	for _, f := range []struct {
		name string
		same bool
	}{
		{"zone", a.Zone == b.Zone},
		{"owner", a.Owner == b.Owner},
		{"contact", a.Contact == b.Contact},
		{"runbook", a.Runbook == b.Runbook},
		{"rto", a.RTO == b.RTO},
		{"approvals", a.Approvals == b.Approvals},
	} {
		if !f.same {
			meta = append(meta, f.name)
		}
	}
	return step, meta
}

func sameWith(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
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
