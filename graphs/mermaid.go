package graphs

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// mermaidShapes open and close a node of each kind: infrastructure as a
// subroutine box, application rounded, interface hexagon, data cylinder.
var mermaidShapes = map[Kind][2]string{
	KindInfrastructure: {"[[", "]]"},
	KindApplication:    {"(", ")"},
	KindInterface:      {"{{", "}}"},
	KindData:           {"[(", ")]"},
}

// RenderMermaid writes g as a Mermaid flowchart with the same conventions as
// RenderDOT. Node ids are n0, n1 … (safe whatever the graph's ids), labels
// are quoted with Mermaid's entity codes for the characters that would end
// or change them. g must be valid.
func RenderMermaid(w io.Writer, g *Graph, opts RenderOptions) error {
	p, err := newRenderPlan(g, opts)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "---\ntitle: %s\n---\n", mermaidTitle(p.title))
	bw.WriteString("flowchart LR\n")
	mid := func(v int) string { return fmt.Sprintf("n%d", v) }
	for _, v := range p.order {
		n := p.g.Nodes[v]
		sh := mermaidShapes[n.Kind]
		lines := p.label(v)
		for i := range lines {
			lines[i] = mermaidEscape(lines[i])
		}
		fmt.Fprintf(bw, "  %s%s\"%s\"%s\n", mid(v), sh[0], strings.Join(lines, "<br/>"), sh[1])
	}
	for _, e := range p.edges {
		fmt.Fprintf(bw, "  %s --> %s\n", mid(e[0]), mid(e[1]))
	}
	for _, t := range p.ifaces {
		fmt.Fprintf(bw, "  %s -.- %s -.- %s\n", mid(t[0]), mid(t[1]), mid(t[2]))
	}
	// One class per fill/outline pair in use.
	classes := map[string][]string{}
	defs := map[string]string{}
	for _, v := range p.order {
		fill, stroke := p.style(v)
		name := "c_" + string(p.a.Effective[v])
		if p.states != nil {
			st := p.states[v]
			if _, ok := stateStyles[st]; !ok {
				st = "pending"
			}
			name += "_" + st
		}
		width := "1.5px"
		if p.a.Effective[v] == CriticalityVital {
			width = "2.5px"
		}
		defs[name] = fmt.Sprintf("fill:%s,stroke:%s,stroke-width:%s,color:#17202a", fill, stroke, width)
		classes[name] = append(classes[name], mid(v))
	}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(bw, "  classDef %s %s\n", n, defs[n])
	}
	for _, n := range names {
		ids := classes[n]
		for len(ids) > 0 { // keep lines short for large graphs
			k := min(len(ids), 50)
			fmt.Fprintf(bw, "  class %s %s\n", strings.Join(ids[:k], ","), n)
			ids = ids[k:]
		}
	}
	return bw.Flush()
}

// mermaidEscape replaces the characters that would end a quoted Mermaid
// label or be read as markup by entity codes (#quot; #35; …).
func mermaidEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString("#quot;")
		case '#':
			b.WriteString("#35;")
		case '<':
			b.WriteString("#60;")
		case '>':
			b.WriteString("#62;")
		case '&':
			b.WriteString("#38;")
		case '`':
			b.WriteString("#96;")
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			if r < 0x20 || r == 0x7f {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mermaidTitle makes s safe as the title of the YAML front matter: one
// double-quoted YAML scalar on one line. Backslashes and quotes are escaped;
// every character that YAML reads as a line break or refuses in a document
// (C0 and C1 controls, DEL, U+2028, U+2029, U+FEFF, non-characters) becomes
// a space, and bytes that are not UTF-8 become U+FFFD, so that a graph's
// name can neither end the front matter nor make Mermaid refuse the chart.
func mermaidTitle(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20, r >= 0x7f && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, r == 0xfffe, r == 0xffff:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
