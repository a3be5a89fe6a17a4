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
	k := 0
	for wave, ids := range p.Waves {
		fmt.Fprintf(tw, "\nWave %d — %d node%s\n", wave+1, len(ids), plural(len(ids)))
		for range ids {
			d := &p.Details[k]
			k++
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
			io.WriteString(tw, line+"\n")
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
