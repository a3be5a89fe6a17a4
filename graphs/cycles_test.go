package graphs

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestStronglyConnectedRandom compares Tarjan with a brute-force
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
		got := stronglyConnected(deps)
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
