package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// svgGraph draws the run's graph on l: the zones as bands, the
// dependencies as curves, each node a box coloured by its state that links
// to its page. Everything is escaped here: ids and titles come from the
// graph file.
func svgGraph(m *view.Model, l *layout) template.HTML {
	var b strings.Builder
	b.Grow(len(m.Nodes)*400 + len(l.Edges)*90)
	run := url.PathEscape(m.Run.ID)
	fmt.Fprintf(&b, `<svg id="graph-svg" class="graph-svg" xmlns="http://www.w3.org/2000/svg" data-w="%d" data-h="%d" role="img" aria-label="dependency graph of run %s"><g id="viewport">`,
		l.W, l.H, html.EscapeString(m.Run.ID))
	zones := map[string]view.ZoneStatus{}
	for _, z := range m.Zones {
		zones[z.ID] = z
	}
	for _, bd := range l.Bands {
		if bd.Zone == noZone && len(l.Bands) == 1 {
			continue // no zones: no cluster to draw
		}
		cls, label := "zone", "no zone"
		if bd.Zone != noZone {
			z := zones[bd.Zone]
			label = fmt.Sprintf("zone %d · %s", bd.Rank+1, bd.Zone)
			if bd.Title != "" {
				label += " — " + bd.Title
			}
			label += fmt.Sprintf(" · %d/%d done", z.Done, z.Total)
			switch {
			case z.Certified != nil:
				cls += " zone-certified"
				label += " · certified by " + z.Certified.By
			case z.Open:
				cls += " zone-open"
				label += " · open, not certified"
			default:
				cls += " zone-closed"
				label += " · waits for the zones above"
			}
		}
		fmt.Fprintf(&b, `<g class="%s" data-zone="%s"><rect class="zone-box" x="%d" y="%d" width="%d" height="%d" rx="8"/><text class="zone-title" x="%d" y="%d">%s</text></g>`,
			cls, html.EscapeString(bd.Zone), margin, bd.Y, l.W-2*margin, bd.H, margin+10, bd.Y+17, html.EscapeString(label))
	}
	b.WriteString(`<g class="edges">`)
	for _, e := range l.Edges {
		f, t := l.Boxes[e.From], l.Boxes[e.To]
		x1, y1, x2, y2 := f.X+boxW, f.Y+boxH/2, t.X, t.Y+boxH/2
		cx := (x1 + x2) / 2
		fmt.Fprintf(&b, `<path class="e" data-from="%s" data-to="%s" d="M%d %dC%d %d %d %d %d %d"/>`,
			html.EscapeString(f.ID), html.EscapeString(t.ID), x1, y1, cx, y1, cx, y2, x2, y2)
	}
	b.WriteString(`</g><g class="nodes">`)
	for i := range m.Nodes {
		n, p := &m.Nodes[i], l.Boxes[i]
		id := html.EscapeString(n.ID)
		tip := n.ID
		if n.Title != "" {
			tip += " — " + n.Title
		}
		tip += " (" + string(n.State) + ")"
		fmt.Fprintf(&b, `<a class="gn st-%s" data-id="%s" data-search="%s" href="/runs/%s/nodes/%s"><rect x="%d" y="%d" width="%d" height="%d" rx="4"/><text x="%d" y="%d">%s</text><title>%s</title></a>`,
			html.EscapeString(string(n.State)), id, html.EscapeString(strings.ToLower(n.ID+" "+n.Title)), run, url.PathEscape(n.ID),
			p.X, p.Y, boxW, boxH, p.X+8, p.Y+17, html.EscapeString(clip(n.ID, 22)), html.EscapeString(tip))
	}
	b.WriteString(`</g></g></svg>`)
	return template.HTML(b.String())
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// aggregate is the graph of a run too large to draw node by node: one
// cell per zone and kind with its nodes' counts by state, and the
// dependencies between cells.
type aggregate struct {
	W, H  int
	Cells []aggCell
	Links []aggLink
	Bands []band
}

type aggCell struct {
	Zone, Kind string
	X, Y       int
	Total      int
	Counts     map[state.NodeState]int
}

type aggLink struct{ From, To, N int }

// Aggregate cell geometry.
const (
	cellW, cellH = 230, 74
	cellGap      = 70
)

func newAggregate(m *view.Model, l *layout) *aggregate {
	a := &aggregate{}
	var kinds []string
	seenKind := map[string]bool{}
	for _, k := range kindOrder(m) {
		if !seenKind[k] {
			seenKind[k] = true
			kinds = append(kinds, k)
		}
	}
	col := map[string]int{}
	for i, k := range kinds {
		col[k] = i
	}
	cell := map[string]int{}
	of := make([]int, len(m.Nodes))
	y := margin
	for _, bd := range l.Bands {
		nb := band{Zone: bd.Zone, Title: bd.Title, Rank: bd.Rank, Y: y, H: bandHead + 2*bandPad + cellH}
		a.Bands = append(a.Bands, nb)
		y += nb.H + bandPad
	}
	bandY := map[string]int{}
	for _, bd := range a.Bands {
		bandY[bd.Zone] = bd.Y + bandHead + bandPad
	}
	for i := range m.Nodes {
		n := &m.Nodes[i]
		z, k := l.Boxes[i].Zone, kindName(n)
		key := z + "\x00" + k
		c, ok := cell[key]
		if !ok {
			c = len(a.Cells)
			cell[key] = c
			a.Cells = append(a.Cells, aggCell{Zone: z, Kind: k, X: margin + bandPad + col[k]*(cellW+cellGap), Y: bandY[z],
				Counts: map[state.NodeState]int{}})
		}
		a.Cells[c].Total++
		a.Cells[c].Counts[n.State]++
		of[i] = c
	}
	links := map[[2]int]int{}
	for _, e := range l.Edges {
		if f, t := of[e.From], of[e.To]; f != t {
			links[[2]int{f, t}]++
		}
	}
	for k, n := range links {
		a.Links = append(a.Links, aggLink{From: k[0], To: k[1], N: n})
	}
	a.W = 2*margin + 2*bandPad + len(kinds)*(cellW+cellGap) - cellGap
	a.H = y + margin
	return a
}

func kindName(n *view.Node) string {
	if n.Kind == "" {
		return "unknown"
	}
	return string(n.Kind)
}

func kindOrder(m *view.Model) []string {
	var out []string
	for _, b := range m.ByKind {
		out = append(out, b.Key)
	}
	return out
}

// paintOrder is the order of a cell's state bar: what needs eyes first.
var paintOrder = []state.NodeState{state.NodeFailed, state.NodeBlocked, state.NodeWaiting, state.NodeRunning,
	state.NodePending, state.NodeSucceeded, state.NodeSkipped}

func svgAggregate(m *view.Model, a *aggregate) template.HTML {
	var b strings.Builder
	run := url.PathEscape(m.Run.ID)
	fmt.Fprintf(&b, `<svg id="graph-svg" class="graph-svg" xmlns="http://www.w3.org/2000/svg" data-w="%d" data-h="%d" role="img" aria-label="graph of run %s by zone and kind"><g id="viewport">`,
		a.W, a.H, html.EscapeString(m.Run.ID))
	zones := map[string]view.ZoneStatus{}
	for _, z := range m.Zones {
		zones[z.ID] = z
	}
	for _, bd := range a.Bands {
		label := "no zone"
		cls := "zone"
		if bd.Zone != noZone {
			z := zones[bd.Zone]
			label = fmt.Sprintf("zone %d · %s · %d/%d done", bd.Rank+1, bd.Zone, z.Done, z.Total)
			if z.Certified != nil {
				cls += " zone-certified"
				label += " · certified by " + z.Certified.By
			}
		} else if len(a.Bands) == 1 {
			label = "all nodes (the graph declares no zones)"
		}
		fmt.Fprintf(&b, `<g class="%s" data-zone="%s"><rect class="zone-box" x="%d" y="%d" width="%d" height="%d" rx="8"/><text class="zone-title" x="%d" y="%d">%s</text></g>`,
			cls, html.EscapeString(bd.Zone), margin, bd.Y, a.W-2*margin, bd.H, margin+10, bd.Y+17, html.EscapeString(label))
	}
	b.WriteString(`<g class="edges">`)
	for _, ln := range a.Links {
		f, t := a.Cells[ln.From], a.Cells[ln.To]
		x1, y1, x2, y2 := f.X+cellW/2, f.Y+cellH/2, t.X+cellW/2, t.Y+cellH/2
		w := 1 + math.Log2(float64(ln.N))
		fmt.Fprintf(&b, `<path class="e agg" stroke-width="%.1f" d="M%d %dQ%d %d %d %d"><title>%d dependencies</title></path>`,
			w, x1, y1, (x1+x2)/2, min(y1, y2)-30, x2, y2, ln.N)
	}
	b.WriteString(`</g><g class="nodes">`)
	for _, c := range a.Cells {
		q := url.Values{"zone": {c.Zone}, "kind": {c.Kind}}
		fmt.Fprintf(&b, `<a class="cell" data-zone="%s" data-kind="%s" href="/runs/%s/graph?%s"><rect x="%d" y="%d" width="%d" height="%d" rx="6"/>`,
			html.EscapeString(c.Zone), html.EscapeString(c.Kind), run, html.EscapeString(q.Encode()), c.X, c.Y, cellW, cellH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="cell-title">%s · %d nodes</text>`, c.X+10, c.Y+20, html.EscapeString(c.Kind), c.Total)
		x := c.X + 10
		var parts []string
		for _, st := range paintOrder {
			n := c.Counts[st]
			if n == 0 {
				continue
			}
			w := max(1, int(math.Round(float64(n)*float64(cellW-20)/float64(c.Total))))
			fmt.Fprintf(&b, `<rect class="bar st-%s" x="%d" y="%d" width="%d" height="12"/>`, st, x, c.Y+30, w)
			x += w
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="cell-counts">%s</text><title>%s</title></a>`, c.X+10, c.Y+62,
			html.EscapeString(clip(strings.Join(parts, " · "), 36)), html.EscapeString(strings.Join(parts, ", ")))
	}
	b.WriteString(`</g></g></svg>`)
	return template.HTML(b.String())
}
