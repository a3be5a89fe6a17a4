package web

import (
	"sort"

	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// The drawn graph's geometry, in SVG user units (CSS pixels at zoom 1).
const (
	boxW     = 168 // a node's box
	boxH     = 26
	colGap   = 64 // between two columns (waves)
	rowGap   = 8  // between two boxes of a column
	bandPad  = 14 // around a zone's boxes
	bandHead = 24 // a zone's title above its boxes
	margin   = 16
)

// layout is the drawing of a run's graph: nodes in layers (a column per
// wave, dependencies on the left) and, when the graph has trust zones, a
// horizontal band per zone, most trusted at the top. It depends only on
// the graph and the run's set of nodes, never on their states: it is
// computed once per graph content (graphCache) and the states are painted
// on it at each page.
type layout struct {
	W, H  int
	Bands []band
	Boxes []box // in view.Model.Nodes order
	Edges []edge
	index map[string]int // node id → Boxes index
}

// band is one zone's cluster.
type band struct {
	Zone, Title string
	Rank        int // 0: most trusted
	Y, H        int
}

// box is one node's place.
type box struct {
	ID   string
	X, Y int
	Zone string
}

// edge is a dependency, drawn from the dependency to its dependent.
type edge struct{ From, To int }

// noZone is the band of nodes outside every zone (or of every node when
// the graph declares none).
const noZone = ""

// newLayout lays out the nodes of m. Within a zone's band, a column's
// boxes are ordered by the mean row of their neighbours (the barycentre
// heuristic, a few sweeps each way), which keeps most edges short and
// uncrossed. Cost: O((V+E)·sweeps + V log V).
func newLayout(m *view.Model) *layout {
	l := &layout{index: make(map[string]int, len(m.Nodes))}
	zoneOf := make([]string, len(m.Nodes))
	var zones []graphs.Zone
	if m.Graph != nil {
		zones = m.Graph.Zones
	}
	rank := map[string]int{}
	for k, z := range zones {
		rank[z.ID] = k
	}
	maxWave := 0
	for i := range m.Nodes {
		n := &m.Nodes[i]
		l.index[n.ID] = i
		if m.Graph != nil {
			if gi, ok := m.Graph.Index(n.ID); ok {
				if _, known := rank[m.Graph.Nodes[gi].Zone]; known {
					zoneOf[i] = m.Graph.Nodes[gi].Zone
				}
			}
		}
		maxWave = max(maxWave, n.Wave)
	}
	for i := range m.Nodes {
		for _, d := range m.Nodes[i].Deps {
			if j, ok := l.index[d]; ok {
				l.Edges = append(l.Edges, edge{From: j, To: i})
			}
		}
	}
	// Bands: the zones in trust order, then the nodes without a zone.
	order := make([]string, 0, len(zones)+1)
	titles := map[string]string{}
	for _, z := range zones {
		order = append(order, z.ID)
		titles[z.ID] = z.Title
	}
	order = append(order, noZone)
	cols := map[string][][]int{} // zone → wave → node indexes
	for i := range m.Nodes {
		z := zoneOf[i]
		c := cols[z]
		for len(c) <= m.Nodes[i].Wave {
			c = append(c, nil)
		}
		c[m.Nodes[i].Wave] = append(c[m.Nodes[i].Wave], i)
		cols[z] = c
	}
	row := make([]float64, len(m.Nodes))
	for _, c := range cols {
		for _, col := range c {
			for r, i := range col {
				row[i] = float64(r)
			}
		}
	}
	deps, users := l.neighbours(len(m.Nodes))
	for sweep := 0; sweep < 3; sweep++ {
		for _, c := range cols {
			for w := 1; w < len(c); w++ {
				sortByBarycentre(c[w], deps, row, zoneOf)
			}
			for w := len(c) - 2; w >= 0; w-- {
				sortByBarycentre(c[w], users, row, zoneOf)
			}
		}
	}
	l.Boxes = make([]box, len(m.Nodes))
	y := margin
	for k, z := range order {
		c := cols[z]
		if len(c) == 0 {
			continue
		}
		tall := 0
		for _, col := range c {
			tall = max(tall, len(col))
		}
		b := band{Zone: z, Title: titles[z], Rank: k, Y: y}
		top := y
		if len(zones) > 0 {
			top += bandHead
		}
		top += bandPad
		for w, col := range c {
			for r, i := range col {
				l.Boxes[i] = box{ID: m.Nodes[i].ID, X: margin + bandPad + w*(boxW+colGap), Y: top + r*(boxH+rowGap), Zone: z}
			}
		}
		b.H = top - y + tall*(boxH+rowGap) - rowGap + bandPad
		l.Bands = append(l.Bands, b)
		y += b.H + bandPad
	}
	l.W = 2*margin + 2*bandPad + (maxWave+1)*(boxW+colGap) - colGap
	l.H = y + margin
	return l
}

// neighbours lists each node's dependencies and dependents (as indexes).
func (l *layout) neighbours(n int) (deps, users [][]int) {
	deps, users = make([][]int, n), make([][]int, n)
	for _, e := range l.Edges {
		deps[e.To] = append(deps[e.To], e.From)
		users[e.From] = append(users[e.From], e.To)
	}
	return deps, users
}

// sortByBarycentre orders one column by the mean row of each node's
// neighbours in the same zone (a node without any keeps its row), then
// renumbers the rows.
func sortByBarycentre(col []int, nb [][]int, row []float64, zoneOf []string) {
	key := make(map[int]float64, len(col))
	for _, i := range col {
		sum, n := 0.0, 0
		for _, j := range nb[i] {
			if zoneOf[j] == zoneOf[i] {
				sum += row[j]
				n++
			}
		}
		if n > 0 {
			key[i] = sum / float64(n)
		} else {
			key[i] = row[i]
		}
	}
	sort.SliceStable(col, func(a, b int) bool { return key[col[a]] < key[col[b]] })
	for r, i := range col {
		row[i] = float64(r)
	}
}
