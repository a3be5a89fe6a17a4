package report

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// syntheticRun is a layered graph of n nodes (about 12 waves), every node
// with one to three dependencies in earlier layers, a tenth failed or
// blocked, attempts spread over three weeks.
func syntheticRun(n int, seed uint64) (*graphs.Graph, []state.NodeRecord) {
	rng := rand.New(rand.NewPCG(seed, 1))
	g := &graphs.Graph{Name: fmt.Sprintf("synthetic-%d", n)}
	var recs []state.NodeRecord
	layer := max(n/12, 1)
	for i := 0; i < n; i++ {
		node := &graphs.Node{ID: fmt.Sprintf("node-%04d", i), Kind: graphs.Kinds[i%4], Criticality: graphs.Criticalities[i%4]}
		if i >= layer {
			lo := max(0, (i/layer-1)*layer)
			for k := 0; k < 1+rng.IntN(3); k++ {
				node.DependsOn = append(node.DependsOn, fmt.Sprintf("node-%04d", lo+rng.IntN(i-lo)))
			}
		}
		g.Nodes = append(g.Nodes, node)
		start := t0.Add(time.Duration(i) * 21 * 24 * time.Hour / time.Duration(n))
		rec := state.NodeRecord{ID: node.ID, State: state.NodeSucceeded, Attempts: 1,
			History: []state.Attempt{{N: 1, Started: start, Ended: start.Add(time.Hour), Result: state.NodeSucceeded}}}
		if i%10 == 7 {
			rec.State, rec.LastError = state.NodeFailed, "exit status 1"
			rec.History[0].Result, rec.History[0].Error = state.NodeFailed, "exit status 1"
		}
		recs = append(recs, rec)
	}
	return g, recs
}

func TestGraphLayoutNoOverlap(t *testing.T) {
	for _, n := range []int{1, 12, 108, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			g, recs := syntheticRun(n, 7)
			r := Build(state.Run{ID: "s"}, recs, nil, state.VerifyReport{OK: true}, g, Options{Now: t0})
			v := layoutGraph(r.Nodes, r.Zones)
			if len(v.Nodes) != n {
				t.Fatalf("%d boxes; want %d", len(v.Nodes), n)
			}
			edges := 0
			for _, node := range r.Nodes {
				edges += len(node.Deps)
			}
			if len(v.Edges) != edges {
				t.Errorf("%d edges drawn; want %d", len(v.Edges), edges)
			}
			seen := map[[2]int]string{}
			for _, b := range v.Nodes {
				if b.X < 0 || b.Y < 0 || b.X+gBoxW > v.Width || b.Y+gBoxH > v.Height {
					t.Errorf("box %s at (%d,%d) outside the %dx%d drawing", b.ID, b.X, b.Y, v.Width, v.Height)
				}
				if other, ok := seen[[2]int{b.X, b.Y}]; ok {
					t.Errorf("boxes %s and %s overlap at (%d,%d)", b.ID, other, b.X, b.Y)
				}
				seen[[2]int{b.X, b.Y}] = b.ID
			}
			// Each dependency is in an earlier column: edges run left to right.
			col := map[string]int{}
			for _, b := range v.Nodes {
				col[b.ID] = b.X
			}
			for _, node := range r.Nodes {
				for _, d := range node.Deps {
					if col[d] >= col[node.ID] {
						t.Errorf("edge %s -> %s does not run left to right", d, node.ID)
					}
				}
			}
		})
	}
}

func TestTimelineLongRun(t *testing.T) {
	g, recs := syntheticRun(60, 3)
	r := Build(state.Run{ID: "long"}, recs, nil, state.VerifyReport{OK: true}, g, Options{Now: t0.Add(30 * 24 * time.Hour)})
	v := r.layoutTimeline()
	if len(v.Rows) != 60 {
		t.Fatalf("%d rows; want 60", len(v.Rows))
	}
	if len(v.Ticks) < 2 || len(v.Ticks) > 11 {
		t.Errorf("%d ticks over three weeks; want 2 to 11", len(v.Ticks))
	}
	if got := v.Ticks[0].Label; got != "30 Nov" {
		t.Errorf("first tick %q; want a day label, 30 Nov (2-day steps from the start day's midnight)", got)
	}
	for k := 1; k < len(v.Rows); k++ { // rows in the order nodes started
		if v.Rows[k].Bars[0].X < v.Rows[k-1].Bars[0].X {
			t.Errorf("row %d starts left of row %d", k, k-1)
		}
	}
	for _, row := range v.Rows {
		for _, b := range row.Bars {
			if b.X < tLabelW || b.X+b.W > tLabelW+tChartW+1 || b.W < 2 {
				t.Errorf("bar of %s at x=%d w=%d outside the chart", row.Label, b.X, b.W)
			}
		}
	}
}

// BenchmarkReportHTML measures Build plus HTML for runs of 100, 1,000 and
// 10,000 nodes.
func BenchmarkReportHTML(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		g, recs := syntheticRun(n, 1)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var size int
			for b.Loop() {
				r := Build(state.Run{ID: "bench"}, recs, nil, state.VerifyReport{OK: true}, g, Options{Now: t0})
				var buf bytes.Buffer
				if err := r.HTML(&buf); err != nil {
					b.Fatal(err)
				}
				size = buf.Len()
			}
			b.ReportMetric(float64(size)/1e6, "MB/report")
		})
	}
}
