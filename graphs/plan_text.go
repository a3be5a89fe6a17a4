package graphs

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints the plan for people: a header, the waves with each
// node's effective criticality and estimate, the critical path and the
// estimated total.
func (p *Plan) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	title := p.File
	if p.Name != "" {
		title += " (" + p.Name + ")"
	}
	fmt.Fprintf(b, "Plan for %s: %d nodes, %d edges, %d waves\n", title, p.Nodes, p.Edges, len(p.Waves))
	if len(p.Targets) > 0 {
		fmt.Fprintf(b, "Targets: %s (and what they depend on)\n", strings.Join(p.Targets, ", "))
	}
	counts := map[Criticality]int{}
	for _, d := range p.Details {
		counts[d.EffectiveCriticality]++
	}
	var cs []string
	for _, c := range Criticalities {
		cs = append(cs, fmt.Sprintf("%d %s", counts[c], c))
	}
	fmt.Fprintf(b, "Effective criticality: %s\n", strings.Join(cs, ", "))

	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	durs := map[time.Duration]string{} // estimates repeat: format each once
	if len(p.Zones) > 0 {
		p.writeZones(b, tw, durs)
	}
	k := 0
	for wave, ids := range p.Waves {
		if len(p.Zones) > 0 {
			break
		}
		fmt.Fprintf(tw, "\nWave %d — %d node%s\n", wave+1, len(ids), plural(len(ids)))
		for range ids {
			d := &p.Details[k]
			k++
			io.WriteString(tw, planLine(d, durs))
		}
		tw.Flush()
	}
	fmt.Fprintf(b, "\nCritical path (marked *) — %s, %d node%s\n", FormatDuration(p.CriticalDuration), len(p.CriticalPath), plural(len(p.CriticalPath)))
	var at time.Duration
	for i, d := range p.criticalNodes() {
		at += d.Estimate
		fmt.Fprintf(tw, "  %d.\t%s\t%s\tdone at %s\n", i+1, d.ID, FormatDuration(d.Estimate), FormatDuration(at))
	}
	tw.Flush()
	fmt.Fprintf(b, "\nEstimated total at parallelism %d: %s (critical path alone: %s)\n",
		p.Parallelism, FormatDuration(p.Estimate), FormatDuration(p.CriticalDuration))
	return b.Flush()
}

// planLine is one node's line in a wave.
func planLine(d *PlanNode, durs map[time.Duration]string) string {
	crit := string(d.EffectiveCriticality)
	if d.Criticality != d.EffectiveCriticality {
		crit += " (own " + string(d.Criticality) + ")"
	}
	est := "-"
	if d.Estimate > 0 {
		if est = durs[d.Estimate]; est == "" {
			est = FormatDuration(d.Estimate)
			durs[d.Estimate] = est
		}
	}
	mark := "   "
	if d.OnCriticalPath {
		mark = " * "
	}
	line := mark + d.ID + "\t" + crit + "\t" + est + "\t" + string(d.Kind)
	if d.Title != "" {
		line += "\t" + oneLine(d.Title)
	}
	return line + "\n"
}

// writeZones prints the zones as stages, their waves inside, and the
// reconnections between them.
func (p *Plan) writeZones(b *bufio.Writer, tw *tabwriter.Writer, durs map[time.Duration]string) {
	byID := make(map[string]*PlanNode, len(p.Details))
	for i := range p.Details {
		byID[p.Details[i].ID] = &p.Details[i]
	}
	for k, z := range p.Zones {
		title := z.ID
		if z.Title != "" {
			title += " — " + oneLine(z.Title)
		}
		n := 0
		for _, w := range z.Waves {
			n += len(w)
		}
		gate := "starts at once"
		if k > 0 {
			gate = "starts once zone " + p.Zones[k-1].ID + " and those before it are certified"
		}
		fmt.Fprintf(b, "\nZone %d: %s — %d node%s, %s\n", k+1, title, n, plural(n), gate)
		for w, ids := range z.Waves {
			fmt.Fprintf(tw, "  Wave %d.%d — %d node%s\n", k+1, w+1, len(ids), plural(len(ids)))
			for _, id := range ids {
				io.WriteString(tw, "  "+planLine(byID[id], durs))
			}
			tw.Flush()
		}
		for _, r := range p.Reconnections {
			if r.To == z.ID {
				fmt.Fprintf(b, "  Reconnection: %s links %s (zone %s) and %s (zone %s)\n", r.Interface, r.Ends[0], zoneOf(byID, r.Ends[0]), r.Ends[1], zoneOf(byID, r.Ends[1]))
			}
		}
		fmt.Fprintf(b, "  Certify: reprise certify RUN %s --by NAME --comment TEXT\n", z.ID)
	}
}

func zoneOf(byID map[string]*PlanNode, id string) string {
	if d, ok := byID[id]; ok {
		return d.Zone
	}
	return "?"
}

// criticalNodes returns the details of the critical path's nodes, in
// order.
func (p *Plan) criticalNodes() []*PlanNode {
	at := make(map[string]int, len(p.CriticalPath))
	for i, id := range p.CriticalPath {
		at[id] = i
	}
	out := make([]*PlanNode, len(p.CriticalPath))
	for i := range p.Details {
		if !p.Details[i].OnCriticalPath {
			continue
		}
		if k, ok := at[p.Details[i].ID]; ok {
			out[k] = &p.Details[i]
		}
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// oneLine replaces tabs and line breaks so that a title stays in its
// column.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
