package report

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Sizes of the graph drawing, in SVG user units (CSS pixels).
const (
	gBoxW   = 150
	gBoxH   = 26
	gGapX   = 44
	gGapY   = 8
	gMargin = 12
	gHead   = 22 // room for the wave headings
	gChars  = 19 // label characters that fit in a box
	// A trust zone is a band across every wave: a heading, then its rows.
	gZoneHead = 18
	gZoneGap  = 10
)

// graphView is the graph laid out by waves: one column per wave, edges from
// the right side of a dependency to the left side of its dependent.
type graphView struct {
	Width, Height int
	Waves         []waveHead
	Nodes         []graphBox
	Edges         []graphEdge
	// Zones are the trust zones drawn as clusters: one band each, most
	// trusted on top, holding every node of the zone (none without zones).
	Zones []zoneBand
}

// zoneBand is a trust zone's cluster: a rectangle across the drawing and
// its heading.
type zoneBand struct {
	ID, Label, Tip string
	Certified      bool
	X, Y, W, H     int
	LX, LY         int // the heading's baseline
}

type waveHead struct {
	X, Y  int
	Label string
}

type graphBox struct {
	ID, Label, Tip, State, Glyph string
	X, Y, TX, TY                 int
}

type graphEdge struct {
	Path  string // cubic Bézier
	Arrow string // small triangle at the dependent's side
	Bad   bool   // the edge carries a failure downstream
}

// layoutGraph places every node: columns are waves, and within a column the
// nodes are ordered by a few barycentre sweeps (the mean row of their
// neighbours), which keeps edges short and untangled for graphs of a few
// hundred nodes. With trust zones, each zone is a band across the columns,
// most trusted on top, and a node stays in its zone's band (nodes of a zone
// the graph no longer declares go to a last band). It costs
// O(sweeps·(V+E) + V log V).
func layoutGraph(nodes []Node, zones []Zone) graphView {
	idx := make(map[string]int, len(nodes))
	waves := 0
	for i, n := range nodes {
		idx[n.ID] = i
		waves = max(waves, n.Wave+1)
	}
	band, bands := zoneBands(nodes, zones)
	cols := make([][]int, waves)
	for i, n := range nodes {
		cols[n.Wave] = append(cols[n.Wave], i)
	}
	for _, c := range cols {
		sort.SliceStable(c, func(a, b int) bool {
			na, nb := nodes[c[a]], nodes[c[b]]
			if band[c[a]] != band[c[b]] {
				return band[c[a]] < band[c[b]]
			}
			ra, rb := graphs.Criticality(na.Effective).Rank(), graphs.Criticality(nb.Effective).Rank()
			if ra != rb {
				return ra > rb
			}
			return na.ID < nb.ID
		})
	}
	dependents := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, d := range n.Deps {
			dependents[idx[d]] = append(dependents[idx[d]], i)
		}
	}
	row := make([]float64, len(nodes))
	setRows := func() {
		for _, c := range cols {
			for r, i := range c {
				row[i] = float64(r)
			}
		}
	}
	setRows()
	bary := func(i int, neigh []int, self float64) float64 {
		key := float64(band[i]) * 1e9 // a node never leaves its zone's band
		if len(neigh) == 0 {
			return key + self
		}
		s := 0.0
		for _, j := range neigh {
			s += row[j]
		}
		return key + s/float64(len(neigh))
	}
	depIdx := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, d := range n.Deps {
			depIdx[i] = append(depIdx[i], idx[d])
		}
	}
	for sweep := 0; sweep < 4; sweep++ {
		for w := 1; w < waves; w++ { // left to right: follow dependencies
			sortByKey(cols[w], func(i int) float64 { return bary(i, depIdx[i], row[i]) })
			setRows()
		}
		for w := waves - 2; w >= 0; w-- { // right to left: follow dependents
			sortByKey(cols[w], func(i int) float64 { return bary(i, dependents[i], row[i]) })
			setRows()
		}
	}
	// rows[b]: the tallest column's number of nodes in band b.
	rows := make([]int, len(bands))
	for _, c := range cols {
		count := make([]int, len(bands))
		for _, i := range c {
			count[band[i]]++
		}
		for b := range rows {
			rows[b] = max(rows[b], count[b])
		}
	}
	width := 2*gMargin + waves*gBoxW + max(waves-1, 0)*gGapX
	v := graphView{Width: width}
	top := make([]int, len(bands)) // y of band b's first row
	y := gMargin + gHead
	for b, zb := range bands {
		if rows[b] == 0 {
			continue
		}
		if zb.ID != "" {
			zb.X, zb.Y, zb.W = gMargin/2, y, width-gMargin
			zb.LX, zb.LY = gMargin, y+13
			y += gZoneHead
		}
		top[b] = y
		y += rows[b] * (gBoxH + gGapY)
		if zb.ID != "" {
			zb.H = y - zb.Y
			v.Zones = append(v.Zones, zb)
			y += gZoneGap
		}
	}
	v.Height = y + gMargin
	pos := make([][2]int, len(nodes))
	for w, c := range cols {
		x := gMargin + w*(gBoxW+gGapX)
		v.Waves = append(v.Waves, waveHead{X: x + gBoxW/2, Y: gMargin + 12, Label: fmt.Sprintf("wave %d", w+1)})
		count := make([]int, len(bands))
		for _, i := range c {
			count[band[i]]++
		}
		r := make([]int, len(bands))
		for _, i := range c {
			b := band[i]
			off := (rows[b] - count[b]) * (gBoxH + gGapY) / 2 // centre short columns in their band
			yy := top[b] + off + r[b]*(gBoxH+gGapY)
			r[b]++
			pos[i] = [2]int{x, yy}
			n := nodes[i]
			v.Nodes = append(v.Nodes, graphBox{
				ID: n.ID, Label: glyph(n.State) + " " + truncate(n.ID, gChars), State: n.State, Glyph: glyph(n.State),
				Tip: tip(n), X: x, Y: yy, TX: x + 8, TY: yy + gBoxH/2 + 4,
			})
		}
	}
	for i, n := range nodes {
		for _, d := range n.Deps {
			j := idx[d]
			x1, y1 := pos[j][0]+gBoxW, pos[j][1]+gBoxH/2
			x2, y2 := pos[i][0]-5, pos[i][1]+gBoxH/2
			mid := (x1 + x2) / 2
			up := nodes[j].State
			v.Edges = append(v.Edges, graphEdge{
				Path:  fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2, y2),
				Arrow: fmt.Sprintf("M%d %d L%d %d L%d %d Z", x2+5, y2, x2-1, y2-4, x2-1, y2+4),
				Bad:   up == string(state.NodeFailed) || up == string(state.NodeBlocked),
			})
		}
	}
	return v
}

// zoneBands returns each node's band and the bands: one per zone, most
// trusted first, plus one for nodes of no declared zone when there are
// zones; a single unnamed band without zones.
func zoneBands(nodes []Node, zones []Zone) ([]int, []zoneBand) {
	band := make([]int, len(nodes))
	if len(zones) == 0 {
		return band, []zoneBand{{}}
	}
	rank := make(map[string]int, len(zones))
	bands := make([]zoneBand, 0, len(zones)+1)
	for i, z := range zones {
		rank[z.ID] = i
		label := fmt.Sprintf("zone %d: %s", i+1, z.ID)
		if z.Title != "" {
			label += " — " + truncate(z.Title, 60)
		}
		tipText := fmt.Sprintf("%s: %d/%d restored, not certified", z.ID, z.Restored, z.Total)
		if z.CertifiedBy != "" {
			label += " · ✓ certified by " + truncate(z.CertifiedBy, 40)
			tipText = fmt.Sprintf("%s: %d/%d restored, certified by %s: %s", z.ID, z.Restored, z.Total, z.CertifiedBy, z.Comment)
		} else {
			label += " · not certified"
		}
		bands = append(bands, zoneBand{ID: z.ID, Label: label, Tip: tipText, Certified: z.CertifiedBy != ""})
	}
	other := false
	for i, n := range nodes {
		b, ok := rank[n.Zone]
		if !ok {
			b, other = len(zones), true
		}
		band[i] = b
	}
	if other {
		bands = append(bands, zoneBand{ID: "-", Label: "no declared zone", Tip: "nodes whose zone the graph does not declare"})
	}
	return band, bands
}

// sortByKey sorts a column by key, ties kept in their current order.
func sortByKey(c []int, key func(int) float64) {
	keys := make(map[int]float64, len(c))
	for _, i := range c {
		keys[i] = key(i)
	}
	sort.SliceStable(c, func(a, b int) bool { return keys[c[a]] < keys[c[b]] })
}

// glyph is a state's symbol: with the colours and the border styles it
// keeps the states apart in greyscale print and for colour-blind readers.
func glyph(s string) string {
	switch state.NodeState(s) {
	case state.NodeSucceeded:
		return "✓"
	case state.NodeFailed:
		return "✗"
	case state.NodeBlocked:
		return "⊘"
	case state.NodeWaiting:
		return "‖"
	case state.NodeRunning:
		return "▶"
	case state.NodeSkipped:
		return "–"
	default:
		return "·"
	}
}

func tip(n Node) string {
	s := n.ID
	if n.Title != "" {
		s += " — " + n.Title
	}
	s += fmt.Sprintf("\n%s, %s, %s", n.State, n.Kind, n.Effective)
	if n.LastError != "" {
		s += "\n" + truncate(n.LastError, 300)
	}
	if len(n.BlockedBy) > 0 {
		s += "\nblocked by " + joinMax(n.BlockedBy, 5)
	}
	return s
}

// truncate cuts s to at most n characters, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func joinMax(list []string, n int) string {
	out := ""
	for i, s := range list {
		if i == n {
			return out + fmt.Sprintf(" and %d more", len(list)-n)
		}
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
