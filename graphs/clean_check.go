package graphs

import (
	"sort"
	"strings"
)

// orderEvidence checks evidence and wipes, and makes each node that wipes
// a machine wait for every evidence node that preserves it (Node.After).
// With incident.require_evidence, a wiped machine that no evidence node
// preserves is a problem.
func (d *decoder) orderEvidence() {
	g := d.g
	preservedBy := map[string][]string{}
	for i, n := range g.Nodes {
		src := &d.src[i].clean
		switch {
		case len(n.Preserves) > 0 && !n.Evidence:
			d.add(src.preserves[0], n.ID, "preserves", n.Preserves[0], ErrSchema, "preserves: only an evidence node preserves machines (want evidence: true)")
		case n.Evidence && len(n.Preserves) == 0:
			d.add(src.evidence, n.ID, "evidence", "true", ErrSchema, "evidence: an evidence node needs preserves (want the machines it images or captures: preserves: [id, …])")
		}
		if n.Evidence {
			for _, m := range n.Preserves {
				preservedBy[m] = append(preservedBy[m], n.ID)
			}
		}
	}
	require := g.Incident != nil && g.Incident.RequireEvidence
	for i, n := range g.Nodes {
		n.After = nil
		for j, m := range n.Wipes {
			ev := preservedBy[m]
			found := false
			for _, e := range ev {
				if e == n.ID {
					continue
				}
				found = true
				if !hasString(n.After, e) {
					n.After = append(n.After, e)
				}
			}
			if !found && require {
				d.add(d.src[i].clean.wipes[j], n.ID, "wipes", m, ErrEvidence, "wipes: nothing preserves evidence of %q before it is wiped (incident.require_evidence is true: add a node with evidence: true and preserves: [%s])", m, m)
			}
		}
	}
}

// checkZones checks zone names, that no node waits for a less trusted
// zone, where cross-zone interfaces belong, and the scanners nodes name.
func (d *decoder) checkZones() {
	g := d.g
	zoneIDs := make([]string, len(g.Zones))
	for i, z := range g.Zones {
		zoneIDs[i] = z.ID
	}
	for i, n := range g.Nodes {
		src := &d.src[i]
		d.checkScan(n, src)
		if len(g.Zones) == 0 {
			if src.clean.hasZone {
				d.add(src.clean.zone, n.ID, "zone", n.Zone, ErrZone, "zone: the graph declares no zones (want zones: [{id, title}, …] at the top, most trusted first)")
			}
			continue
		}
		if !src.clean.hasZone {
			d.add(n.Pos, n.ID, "zone", "", ErrZone, "missing zone (the graph declares zones: want one of %s)", strings.Join(zoneIDs, ", "))
			continue
		}
		rank := g.ZoneRank(n.Zone)
		if rank < 0 {
			hint := ""
			if c := closest(n.Zone, zoneIDs); c != "" {
				hint = "did you mean \"" + c + "\"? "
			}
			d.add(src.clean.zone, n.ID, "zone", n.Zone, ErrZone, "zone: unknown zone %s (%swant one of %s)", quoteShort(n.Zone), hint, strings.Join(zoneIDs, ", "))
			continue
		}
		d.checkZoneDeps(i, n, rank)
	}
}

// checkZoneDeps reports each dependency on a less trusted zone, and a
// cross-zone interface that is not in the less trusted of its ends' zones.
func (d *decoder) checkZoneDeps(i int, n *Node, rank int) {
	g := d.g
	src := &d.src[i]
	lists := []struct {
		field string
		ids   []string
		idx   []int32
	}{{"depends_on", n.DependsOn, src.depIdx}, {"between", n.Between, src.endIdx}, {"wipes", n.After, src.afterIdx}}
	for _, l := range lists {
		for j, k := range l.idx {
			if k < 0 {
				continue
			}
			dep := g.Nodes[k]
			dr := g.ZoneRank(dep.Zone)
			if dr <= rank {
				continue
			}
			pos, field := d.edgePos(i, l.ids[j])
			if l.field == "wipes" {
				d.add(pos, n.ID, field, dep.ID, ErrZone, "wipes: evidence node %q is in zone %q, less trusted than this node's zone %q (a node never waits for a less trusted zone: put the evidence node in %q or a more trusted zone)", dep.ID, dep.Zone, n.Zone, n.Zone)
				continue
			}
			d.add(pos, n.ID, field, dep.ID, ErrZone, "%s: %q is in zone %q, less trusted than this node's zone %q (a node never waits for a less trusted zone)", field, dep.ID, dep.Zone, n.Zone)
		}
	}
	if n.Kind != KindInterface || len(src.endIdx) != 2 || src.endIdx[0] < 0 || src.endIdx[1] < 0 {
		return
	}
	a, b := g.Nodes[src.endIdx[0]], g.Nodes[src.endIdx[1]]
	ra, rb := g.ZoneRank(a.Zone), g.ZoneRank(b.Zone)
	if ra < 0 || rb < 0 || ra == rb {
		return
	}
	want := a.Zone
	if rb > ra {
		want = b.Zone
	}
	if n.Zone != want && rank < max(ra, rb) {
		return // reported above as a dependency on a less trusted zone
	}
	if n.Zone != want {
		d.add(src.clean.zone, n.ID, "zone", n.Zone, ErrZone, "zone: interface between zones %q and %q belongs to the less trusted one, %q (got %q)", a.Zone, b.Zone, want, n.Zone)
	}
}

// checkScan checks that the scanners a node names are declared and that it
// has restore points to scan (and scanners for its points).
func (d *decoder) checkScan(n *Node, src *nodeSrc) {
	g := d.g
	for j, s := range n.Scan {
		if _, ok := g.Scanner(s); ok {
			continue
		}
		names := make([]string, len(g.Scanners))
		for k, sc := range g.Scanners {
			names[k] = sc.Name
		}
		sort.Strings(names)
		want := "none declared: add scanners at the top"
		if len(names) > 0 {
			want = "want one of " + strings.Join(names, ", ")
		}
		d.add(src.clean.scan[j], n.ID, "scan", s, ErrUnknownScanner, "scan: unknown scanner %s (%s)", quoteShort(s), want)
	}
	switch {
	case len(n.Scan) > 0 && n.RestorePoints == nil:
		d.add(src.clean.scan[0], n.ID, "scan", n.Scan[0], ErrSchema, "scan: the node has no restore_points to scan (want restore_points: a list of {id, time, path}, or {from: plugin})")
	case n.RestorePoints != nil && len(n.Scan) == 0:
		d.add(n.RestorePoints.Pos, n.ID, "restore_points", "", ErrSchema, "restore_points: no scan names the scanners to run on them (want scan: [scanner, …]; a point is chosen only once scanned clean)")
	}
}
