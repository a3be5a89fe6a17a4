package graphs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dominikbraun/graph"
)

// TestStronglyConnectedRandom compares the components found (by the graph
// library, on our view) with a brute-force
// reachability closure on random small graphs, and checks that every
// cycle shown is a real cycle through the component.
func TestStronglyConnectedRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		n := 1 + rng.IntN(9)
		deps := make([][]int, n)
		reach := make([][]bool, n)
		for v := range deps {
			reach[v] = make([]bool, n)
			for w := 0; w < n; w++ {
				if w != v && rng.IntN(4) == 0 {
					deps[v] = append(deps[v], w)
					reach[v][w] = true
				}
			}
		}
		for k := 0; k < n; k++ {
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					if reach[i][k] && reach[k][j] {
						reach[i][j] = true
					}
				}
			}
		}
		var want [][]int
		seen := make([]bool, n)
		for v := 0; v < n; v++ {
			if seen[v] {
				continue
			}
			comp := []int{v}
			for w := v + 1; w < n; w++ {
				if reach[v][w] && reach[w][v] {
					comp = append(comp, w)
					seen[w] = true
				}
			}
			if len(comp) > 1 {
				want = append(want, comp)
			}
		}
		got := stronglyConnected(deps, nil)
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("deps %v: got %v want %v", deps, got, want)
		}
		for _, comp := range got {
			in := map[int]bool{}
			for _, m := range comp {
				in[m] = true
			}
			path := cycleThrough(deps, comp, comp[0])
			if len(path) < 3 || path[0] != comp[0] || path[len(path)-1] != comp[0] {
				t.Fatalf("deps %v comp %v: bad cycle %v", deps, comp, path)
			}
			for i := 0; i+1 < len(path); i++ {
				if !in[path[i]] || !reach[path[i]][path[i+1]] || !contains(deps[path[i]], path[i+1]) {
					t.Fatalf("deps %v: %d -> %d is not an edge of the component (cycle %v)", deps, path[i], path[i+1], path)
				}
			}
		}
	}
}

func contains(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// TestCycleReportLarge: one problem per knot on a big graph, quickly, with
// the members beyond the shown cycle named and capped.
func TestCycleReportLarge(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nnodes:\n")
	// A ring of 50 nodes with chords, plus a separate two-node knot.
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "  - {id: r%02d, kind: data, plugin: noop, depends_on: [r%02d, r%02d]}\n", i, (i+1)%50, (i+7)%50)
	}
	b.WriteString("  - {id: x, kind: data, plugin: noop, depends_on: [y]}\n  - {id: y, kind: data, plugin: noop, depends_on: [x]}\n")
	_, err := Parse("ring.yaml", []byte(b.String()))
	ve, ok := err.(*ValidationError)
	if !ok || len(ve.Problems) != 2 {
		t.Fatalf("got %v", err)
	}
	msgs := []string{ve.Problems[0].Message, ve.Problems[1].Message}
	sort.Strings(msgs)
	if !strings.HasPrefix(msgs[0], "dependency cycle: r00 -> r01 -> r08 -> ") || !strings.Contains(msgs[0], "50 nodes form this knot, also ") || !strings.Contains(msgs[0], " more") {
		t.Errorf("ring: %s", msgs[0])
	}
	if msgs[1] != "dependency cycle: x -> y -> x (a -> b: a depends on b)" {
		t.Errorf("pair: %s", msgs[1])
	}
}

// TestDepStore: the library's view serves members and the edges between
// them only, refuses writes, and says so for what is not there.
func TestDepStore(t *testing.T) {
	deps := [][]int{{1, 2}, {2}, nil, {0}}
	m := libraryView(deps, []int{0, 2, 1})
	adj, err := m.AdjacencyMap()
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][]int{}
	for k, out := range adj {
		for l := range out {
			got[k-1] = append(got[k-1], l-1)
		}
		sort.Ints(got[k-1])
	}
	if want := map[int][]int{0: {1, 2}, 1: {2}}; !reflect.DeepEqual(got, want) || len(adj) != 3 {
		t.Errorf("adjacency (by index) = %v over %d vertices, want %v over 3 (node 3 is not a member)", got, len(adj), want)
	}
	if _, err := m.Vertex(4); !errors.Is(err, graph.ErrVertexNotFound) {
		t.Errorf("Vertex(node 3) err = %v, want ErrVertexNotFound", err)
	}
	if _, err := m.Edge(2, 1); !errors.Is(err, graph.ErrEdgeNotFound) {
		t.Errorf("Edge(1 -> 0) err = %v, want ErrEdgeNotFound", err)
	}
	if err := m.AddEdge(3, 1); !errors.Is(err, errReadOnly) {
		t.Errorf("AddEdge err = %v, want the read-only error", err)
	}
}

// BenchmarkCycleKnots100k: the knots of a 100,000-node graph whose first
// node depends on its last (one knot of every node), found by the library
// on the view.
func BenchmarkCycleKnots100k(b *testing.B) {
	const n = 100_000
	deps := make([][]int, n)
	for v := 1; v < n; v++ {
		deps[v] = []int{v - 1}
		if v >= 2 {
			deps[v] = append(deps[v], v-2)
		}
	}
	deps[0] = []int{n - 1}
	for b.Loop() {
		if c := stronglyConnected(deps, nil); len(c) != 1 || len(c[0]) != n {
			b.Fatalf("got %d knots", len(c))
		}
	}
}

func TestKnotted(t *testing.T) {
	// 0 <-> 1 is a cycle; 2 depends on it, 3 on 2; 4 is independent;
	// 5 <-> 6 is another cycle that 1 depends on through 7.
	deps := [][]int{{1}, {0, 7}, {0}, {2}, nil, {6}, {5}, {5}}
	order, _ := kahn(deps, reverse(deps))
	if got := knotted(deps, order); !reflect.DeepEqual(got, []int{0, 1, 5, 6, 7}) {
		t.Errorf("knotted = %v, want [0 1 5 6 7] (2 and 3 only depend on a cycle)", got)
	}
}
