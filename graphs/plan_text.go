package graphs

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// WriteText prints the plan for people: a header, the waves with each
// node's effective criticality and estimate, the critical path and the
// estimated total.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	title := p.File
	if p.Name != "" {
		title += " (" + p.Name + ")"
	}
	fmt.Fprintf(&b, "Plan for %s: %d nodes, %d edges, %d waves\n", title, p.Nodes, p.Edges, len(p.Waves))
	if len(p.Targets) > 0 {
		fmt.Fprintf(&b, "Targets: %s (and what they depend on)\n", strings.Join(p.Targets, ", "))
	}
	counts := map[Criticality]int{}
	for _, d := range p.Details {
		counts[d.EffectiveCriticality]++
	}
	var cs []string
	for _, c := range Criticalities {
		cs = append(cs, fmt.Sprintf("%d %s", counts[c], c))
	}
	fmt.Fprintf(&b, "Effective criticality: %s\n", strings.Join(cs, ", "))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	k := 0
	for wave, ids := range p.Waves {
		fmt.Fprintf(tw, "\nWave %d — %d node%s\n", wave+1, len(ids), plural(len(ids)))
		for range ids {
			d := p.Details[k]
			k++
			crit := string(d.EffectiveCriticality)
			if d.Criticality != d.EffectiveCriticality {
				crit += " (own " + string(d.Criticality) + ")"
			}
			est := "-"
			if d.EstimateSeconds > 0 {
				est = FormatDuration(secs(d.EstimateSeconds))
			}
			mark := " "
			if d.OnCriticalPath {
				mark = "*"
			}
			fmt.Fprintf(tw, " %s %s\t%s\t%s\t%s", mark, d.ID, crit, est, d.Kind)
			if d.Title != "" {
				fmt.Fprintf(tw, "\t%s", oneLine(d.Title))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "\nCritical path (marked *) — %s, %d node%s\n", FormatDuration(secs(p.CriticalPathSeconds)), len(p.CriticalPath), plural(len(p.CriticalPath)))
	byID := make(map[string]*PlanNode, len(p.Details))
	for i := range p.Details {
		byID[p.Details[i].ID] = &p.Details[i]
	}
	var at time.Duration
	for i, id := range p.CriticalPath {
		est := secs(byID[id].EstimateSeconds)
		at += est
		fmt.Fprintf(tw, "  %d.\t%s\t%s\tdone at %s\n", i+1, id, FormatDuration(est), FormatDuration(at))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nEstimated total at parallelism %d: %s (critical path alone: %s)\n",
		p.Parallelism, FormatDuration(p.Estimate), FormatDuration(p.CriticalDuration))
	_, err := io.WriteString(w, b.String())
	return err
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
