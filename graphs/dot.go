package graphs

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// dotShapes draw each kind with its own graphviz shape.
var dotShapes = map[Kind]string{
	KindInfrastructure: "box3d",
	KindApplication:    "box",
	KindInterface:      "hexagon",
	KindData:           "cylinder",
}

// RenderDOT writes g as a graphviz digraph: arrows go from a dependency to
// what depends on it (restore order, left to right), shapes say the kind
// (infrastructure box3d, application rounded box, interface hexagon, data
// cylinder), colours the effective criticality (or the state, when
// opts.States is set); an interface sits on a dashed line between its two
// ends. g must be valid.
func RenderDOT(w io.Writer, g *Graph, opts RenderOptions) error {
	p, err := newRenderPlan(g, opts)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "digraph %s {\n", dotQuote(p.title))
	fmt.Fprintf(bw, "  graph [rankdir=LR, label=%s, labelloc=t, fontname=\"Helvetica\", nodesep=0.25, ranksep=0.6];\n", dotQuote(p.title))
	bw.WriteString("  node [fontname=\"Helvetica\", fontsize=10, style=\"filled\", penwidth=1.5];\n")
	bw.WriteString("  edge [color=\"#566573\", arrowsize=0.7];\n")
	if len(p.g.Zones) > 0 {
		// Zones are clusters, most trusted first; the certification of
		// each shows in its label when the run's states say so.
		for k, z := range p.g.Zones {
			label := z.ID
			if z.Title != "" {
				label += " — " + z.Title
			}
			if c := opts.Certified[z.ID]; c != "" {
				label += "\n" + c
			}
			fmt.Fprintf(bw, "  subgraph %s {\n    label=%s; style=\"rounded,dashed\"; color=\"#1f618d\"; fontsize=12; labeljust=l;\n",
				dotQuote(fmt.Sprintf("cluster_%d_%s", k, z.ID)), dotQuote(label))
			for _, v := range p.order {
				if p.g.Nodes[v].Zone == z.ID {
					p.dotNode(bw, v, "    ")
				}
			}
			bw.WriteString("  }\n")
		}
	} else {
		for _, v := range p.order {
			p.dotNode(bw, v, "  ")
		}
	}
	for _, e := range p.edges {
		fmt.Fprintf(bw, "  %s -> %s;\n", dotQuote(p.g.Nodes[e[0]].ID), dotQuote(p.g.Nodes[e[1]].ID))
	}
	for _, t := range p.ifaces {
		a, i, b := dotQuote(p.g.Nodes[t[0]].ID), dotQuote(p.g.Nodes[t[1]].ID), dotQuote(p.g.Nodes[t[2]].ID)
		fmt.Fprintf(bw, "  %s -> %s -> %s [style=dashed, dir=none, color=\"#2471a3\"];\n", a, i, b)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// dotNode writes node v's statement.
func (p *renderPlan) dotNode(bw *bufio.Writer, v int, indent string) {
	{
		n := p.g.Nodes[v]
		fill, stroke := p.style(v)
		shape := dotShapes[n.Kind]
		style := "filled"
		if n.Kind == KindApplication {
			style = "filled,rounded"
		}
		pen := "1.5"
		if p.a.Effective[v] == CriticalityVital {
			pen = "2.5"
		}
		fmt.Fprintf(bw, "%s%s [label=%s, shape=%s, style=%s, fillcolor=%s, color=%s, penwidth=%s];\n",
			indent, dotQuote(n.ID), dotQuote(strings.Join(p.label(v), "\n")), shape, dotQuote(style),
			dotQuote(fill), dotQuote(stroke), pen)
	}
}

// dotQuote writes s as a DOT double-quoted string; a newline becomes a
// centred line break.
func dotQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r', '\t':
			b.WriteByte(' ')
		default:
			if r < 0x20 || r == 0x7f {
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
