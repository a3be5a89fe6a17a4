package graphs

import (
	"fmt"
	"sort"
	"strings"
)

// RenderOptions tune RenderDOT and RenderMermaid. The zero value draws the
// whole graph coloured by effective criticality.
type RenderOptions struct {
	// States maps node id to a run state ("succeeded", "failed" …). When
	// set, nodes are filled by state and outlined by criticality.
	States map[string]string
	// Targets, when set, draws only the targets and their ancestors.
	Targets []string
	// Certified maps a zone id to how it was certified ("certified by
	// NAME at TIME"), shown in the zone's cluster label.
	Certified map[string]string
}

// style is how a criticality or a state is drawn.
type style struct{ fill, stroke string }

var criticalityStyles = map[Criticality]style{
	CriticalityVital:  {"#f8d7da", "#b03a2e"},
	CriticalityHigh:   {"#fde2c8", "#ca6f1e"},
	CriticalityNormal: {"#fff3c4", "#9a7d0a"},
	CriticalityLow:    {"#eaecee", "#707b7c"},
}

// stateStyles colour the node states of a run (state.NodeState; graphs
// does not import the state package, so the names are repeated here).
var stateStyles = map[string]style{
	"pending":   {"#ffffff", "#707b7c"},
	"running":   {"#d6eaf8", "#2471a3"},
	"succeeded": {"#d5f5e3", "#1e8449"},
	"failed":    {"#f5b7b1", "#922b21"},
	"blocked":   {"#d5d8dc", "#566573"},
	"waiting":   {"#e8daef", "#7d3c98"},
	"skipped":   {"#fbfcfc", "#aab7b8"},
}

// renderPlan is what both renderers draw: the nodes in a stable order
// (waves, ids sorted), their effective criticality, the plain dependency
// edges and the interfaces drawn between their two ends.
type renderPlan struct {
	g      *Graph
	a      *Analysis
	order  []int
	edges  [][2]int // dependency → dependent
	ifaces [][3]int // first end, interface, second end (first end on the lower wave)
	states []string // by node index, "" when unknown
	title  string
}

func newRenderPlan(g *Graph, opts RenderOptions) (*renderPlan, error) {
	if len(opts.Targets) > 0 {
		sub, err := g.Subset(opts.Targets)
		if err != nil {
			return nil, err
		}
		g = sub
	}
	a := Analyze(g)
	p := &renderPlan{g: g, a: a, order: a.Order, title: g.Name}
	if p.title == "" {
		p.title = "reprise graph"
	}
	for v, n := range g.Nodes {
		ends := map[int]bool{}
		if n.Kind == KindInterface && len(n.Between) == 2 {
			x, okx := g.Index(n.Between[0])
			y, oky := g.Index(n.Between[1])
			if okx && oky && x != y {
				if a.Level[y] < a.Level[x] || (a.Level[y] == a.Level[x] && g.Nodes[y].ID < g.Nodes[x].ID) {
					x, y = y, x
				}
				p.ifaces = append(p.ifaces, [3]int{x, v, y})
				ends[x], ends[y] = true, true
			}
		}
		for _, d := range a.Deps[v] {
			if !ends[d] {
				p.edges = append(p.edges, [2]int{d, v})
			}
		}
	}
	rank := make([]int, len(g.Nodes))
	for k, v := range p.order {
		rank[v] = k
	}
	sort.Slice(p.edges, func(i, j int) bool {
		ei, ej := p.edges[i], p.edges[j]
		if rank[ei[0]] != rank[ej[0]] {
			return rank[ei[0]] < rank[ej[0]]
		}
		return rank[ei[1]] < rank[ej[1]]
	})
	sort.Slice(p.ifaces, func(i, j int) bool { return rank[p.ifaces[i][1]] < rank[p.ifaces[j][1]] })
	if opts.States != nil {
		p.states = make([]string, len(g.Nodes))
		for v, n := range g.Nodes {
			p.states[v] = opts.States[n.ID]
		}
	}
	return p, nil
}

// style returns the fill and outline of node v.
func (p *renderPlan) style(v int) (fill, stroke string) {
	c := criticalityStyles[p.a.Effective[v]]
	if p.states == nil {
		return c.fill, c.stroke
	}
	s, ok := stateStyles[p.states[v]]
	if !ok {
		s = stateStyles["pending"]
	}
	return s.fill, c.stroke
}

// label is the text of node v: id, title, criticality and estimate.
func (p *renderPlan) label(v int) []string {
	n := p.g.Nodes[v]
	lines := []string{n.ID}
	if n.Title != "" {
		lines = append(lines, wrapWords(n.Title, 32)...)
	}
	info := string(p.a.Effective[v])
	if n.Criticality != p.a.Effective[v] {
		info += fmt.Sprintf(" (own %s)", n.Criticality)
	}
	if n.Estimate > 0 {
		info += " · " + FormatDuration(n.Estimate)
	}
	if p.states != nil && p.states[v] != "" {
		info += " · " + p.states[v]
	}
	return append(lines, info)
}

// wrapWords cuts s into lines of about width characters at spaces.
func wrapWords(s string, width int) []string {
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		w := []rune(word)
		if len(cur) > 0 && len(cur)+1+len(w) > width {
			lines = append(lines, string(cur))
			cur = cur[:0]
		}
		if len(cur) > 0 {
			cur = append(cur, ' ')
		}
		cur = append(cur, w...)
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}
