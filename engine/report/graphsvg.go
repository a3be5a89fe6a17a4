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
)

// graphView is the graph laid out by waves: one column per wave, edges from
// the right side of a dependency to the left side of its dependent.
type graphView struct {
	Width, Height int
	Waves         []waveHead
	Nodes         []graphBox
	Edges         []graphEdge
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
// hundred nodes. It costs O(sweeps·(V+E) + V log V).
func layoutGraph(nodes []Node) graphView {
	idx := make(map[string]int, len(nodes))
	waves := 0
	for i, n := range nodes {
		idx[n.ID] = i
		waves = max(waves, n.Wave+1)
	}
	cols := make([][]int, waves)
	for i, n := range nodes {
		cols[n.Wave] = append(cols[n.Wave], i)
	}
	for _, c := range cols {
		sort.SliceStable(c, func(a, b int) bool {
			na, nb := nodes[c[a]], nodes[c[b]]
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
		if len(neigh) == 0 {
			return self
		}
		s := 0.0
		for _, j := range neigh {
			s += row[j]
		}
		return s / float64(len(neigh))
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
	tallest := 0
	for _, c := range cols {
		tallest = max(tallest, len(c))
	}
	v := graphView{
		Width:  2*gMargin + waves*gBoxW + max(waves-1, 0)*gGapX,
		Height: 2*gMargin + gHead + tallest*(gBoxH+gGapY),
	}
	pos := make([][2]int, len(nodes))
	for w, c := range cols {
		x := gMargin + w*(gBoxW+gGapX)
		v.Waves = append(v.Waves, waveHead{X: x + gBoxW/2, Y: gMargin + 12, Label: fmt.Sprintf("wave %d", w+1)})
		off := (tallest - len(c)) * (gBoxH + gGapY) / 2 // centre short columns
		for r, i := range c {
			y := gMargin + gHead + off + r*(gBoxH+gGapY)
			pos[i] = [2]int{x, y}
			n := nodes[i]
			v.Nodes = append(v.Nodes, graphBox{
				ID: n.ID, Label: glyph(n.State) + " " + truncate(n.ID, gChars), State: n.State, Glyph: glyph(n.State),
				Tip: tip(n), X: x, Y: y, TX: x + 8, TY: y + gBoxH/2 + 4,
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
