package graphs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dominikbraun/graph"
)

func ids(g *Graph, idx []int) []string {
	out := make([]string, len(idx))
	for i, v := range idx {
		out[i] = g.Nodes[v].ID
	}
	return out
}

func TestAnalyzeSmall(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	a := Analyze(g)
	var waves []string
	for _, w := range a.Waves {
		waves = append(waves, strings.Join(ids(g, w), ","))
	}
	if got, want := strings.Join(waves, " | "), "network | ad,san | pacs,ris | ris-to-pacs | pacs-reentry"; got != want {
		t.Errorf("waves: got %s want %s", got, want)
	}
	if got := strings.Join(ids(g, a.Order), ","); got != "network,ad,san,pacs,ris,ris-to-pacs,pacs-reentry" {
		t.Errorf("order: %s", got)
	}
	eff := map[string]Criticality{}
	rem := map[string]time.Duration{}
	for v, n := range g.Nodes {
		eff[n.ID] = a.Effective[v]
		rem[n.ID] = a.Remaining[v]
	}
	// network is vital itself; ad and san feed pacs (high); ris feeds only
	// the interface (normal); pacs-reentry is low.
	wantEff := map[string]Criticality{"network": "vital", "ad": "high", "san": "high", "ris": "normal", "pacs": "high", "ris-to-pacs": "normal", "pacs-reentry": "low"}
	if !reflect.DeepEqual(eff, wantEff) {
		t.Errorf("effective: got %v want %v", eff, wantEff)
	}
	h := time.Hour
	wantRem := map[string]time.Duration{"pacs-reentry": 24 * h, "ris-to-pacs": 24*h + h/2, "pacs": 27*h + h/2, "ris": 25*h + h/2, "ad": 31*h + h/2, "san": 33*h + h/2, "network": 35*h + h/2}
	if !reflect.DeepEqual(rem, wantRem) {
		t.Errorf("remaining: got %v want %v", rem, wantRem)
	}
	if got := strings.Join(ids(g, a.CriticalPath), ","); got != "network,san,pacs,ris-to-pacs,pacs-reentry" || a.CriticalDuration != 35*h+h/2 {
		t.Errorf("critical path: %s %v", got, a.CriticalDuration)
	}
	for _, tc := range []struct {
		par  int
		want time.Duration
	}{
		{1, 40*h + h/2}, // everything in a row
		{2, 35*h + h/2}, // the critical path, with room for the rest beside it
		{8, 35*h + h/2},
		{0, 40*h + h/2}, // below 1 counts as 1
	} {
		if got := EstimateDuration(g, a, tc.par); got != tc.want {
			t.Errorf("EstimateDuration(parallelism %d) = %v, want %v", tc.par, got, tc.want)
		}
	}
}

// TestEstimatePriority checks that ready nodes start by effective
// criticality first: with one worker, the vital chain runs before a longer
// low one.
func TestEstimatePriority(t *testing.T) {
	g := mustParse(t, "p.yaml", `version: 1
nodes:
  - {id: long-low, kind: data, plugin: noop, criticality: low, estimate: 10h}
  - {id: short-vital, kind: data, plugin: noop, criticality: vital, estimate: 1h}
  - {id: after-vital, kind: data, plugin: noop, depends_on: [short-vital], estimate: 1h}
`)
	a := Analyze(g)
	if got := strings.Join(ids(g, a.CriticalPath), ","); got != "long-low" {
		t.Errorf("critical path: %s", got)
	}
	if got := EstimateDuration(g, a, 2); got != 10*time.Hour {
		t.Errorf("parallelism 2: %v", got)
	}
	if got := EstimateDuration(g, a, 1); got != 12*time.Hour {
		t.Errorf("parallelism 1: %v", got)
	}
}

// TestEstimatePluginCap: a plugin's max_parallel limits the estimate as it
// limits the scheduler; the other plugins' nodes go ahead meanwhile.
func TestEstimatePluginCap(t *testing.T) {
	g := mustParse(t, "cap.yaml", `version: 1
plugins:
  lab-vendor: {path: ./lab, max_parallel: 2}
nodes:
  - {id: l1, kind: data, plugin: lab-vendor, estimate: 1h}
  - {id: l2, kind: data, plugin: lab-vendor, estimate: 1h}
  - {id: l3, kind: data, plugin: lab-vendor, estimate: 1h}
  - {id: l4, kind: data, plugin: lab-vendor, estimate: 1h}
  - {id: l5, kind: data, plugin: lab-vendor, estimate: 1h}
  - {id: n1, kind: data, plugin: noop, estimate: 3h}
  - {id: n2, kind: data, plugin: noop, estimate: 3h}
`)
	a := Analyze(g)
	// Five 1h lab steps two at a time take 3h beside the 3h noop steps; with
	// 3 slots, the noop steps go first (longer paths) and the lab steps run
	// one at a time beside them for 3h, then the last two: 4h.
	for _, tt := range []struct {
		parallelism int
		want        time.Duration
	}{{8, 3 * time.Hour}, {4, 3 * time.Hour}, {3, 4 * time.Hour}, {1, 11 * time.Hour}} {
		if got := EstimateDuration(g, a, tt.parallelism); got != tt.want {
			t.Errorf("parallelism %d: %v, want %v", tt.parallelism, got, tt.want)
		}
	}
	// The cap alone: ten capped 1h steps at max_parallel 2 take 5h, however many slots.
	src := "version: 1\nplugins:\n  lab-vendor: {path: ./lab, max_parallel: 2}\nnodes:\n"
	for i := range 10 {
		src += fmt.Sprintf("  - {id: l%d, kind: data, plugin: lab-vendor, estimate: 1h}\n", i)
	}
	g = mustParse(t, "cap10.yaml", src)
	if got := EstimateDuration(g, Analyze(g), 8); got != 5*time.Hour {
		t.Errorf("ten capped steps: %v, want 5h", got)
	}
}

// libraryModel copies g into the graph library's default store, one vertex
// per node (hashed by id), one edge from each dependency to the node that
// depends on it: an independent model to check ours against.
func libraryModel(t *testing.T, g *Graph) graph.Graph[string, *Node] {
	t.Helper()
	m := graph.New(func(n *Node) string { return n.ID }, graph.Directed())
	for _, n := range g.Nodes {
		if err := m.AddVertex(n); err != nil {
			t.Fatalf("add node %q: %v", n.ID, err)
		}
	}
	for _, n := range g.Nodes {
		for _, d := range n.Deps() {
			if err := m.AddEdge(d, n.ID); err != nil {
				t.Fatalf("add dependency %q of node %q: %v", d, n.ID, err)
			}
		}
	}
	return m
}

// TestAnalyzeAgainstLibrary builds synthetic graphs and checks our order
// against the graph library's model: every library edge goes forward in
// our order, and the library agrees the graph has no cycle.
func TestAnalyzeAgainstLibrary(t *testing.T) {
	for _, n := range []int{1, 10, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			g := mustLoad(t, writeSynthetic(t, dir, n, 3*n, "yaml"))
			a := Analyze(g)
			m := libraryModel(t, g)
			pos := map[string]int{}
			for k, v := range a.Order {
				pos[g.Nodes[v].ID] = k
			}
			edges, _ := m.Edges()
			if len(edges) != g.EdgeCount() {
				t.Errorf("library has %d edges, we count %d", len(edges), g.EdgeCount())
			}
			for _, e := range edges {
				if pos[e.Source] >= pos[e.Target] {
					t.Errorf("edge %s -> %s goes backwards in our order", e.Source, e.Target)
				}
			}
			if _, err := graph.TopologicalSort(m); err != nil {
				t.Errorf("library finds a cycle: %v", err)
			}
			// Wave k nodes have a dependency in wave k-1 and none later.
			for k, w := range a.Waves {
				for _, v := range w {
					best := -1
					for _, d := range a.Deps[v] {
						best = max(best, a.Level[d])
					}
					if best != k-1 {
						t.Fatalf("node %s in wave %d, deepest dependency in wave %d", g.Nodes[v].ID, k, best)
					}
				}
			}
		})
	}
}

func TestSubset(t *testing.T) {
	g := mustLoad(t, "testdata/small.yaml")
	sub, err := g.Subset([]string{"ris-to-pacs"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range sub.Nodes {
		got = append(got, n.ID)
	}
	if strings.Join(got, ",") != "network,ad,san,ris,pacs,ris-to-pacs" {
		t.Errorf("subset: %v", got)
	}
	if _, ok := sub.Node("pacs-reentry"); ok {
		t.Error("subset kept a descendant")
	}
	if a := Analyze(sub); len(a.Order) != len(sub.Nodes) {
		t.Errorf("analysis of the subset: %d of %d", len(a.Order), len(sub.Nodes))
	}
	if _, err := g.Subset([]string{"ad", "pac", "zzzzzzzz"}); err == nil || err.Error() != `target "pac" (did you mean "pacs"?), "zzzzzzzz": unknown node` {
		t.Errorf("unknown targets: %v", err)
	}
}

func TestDiffGraphs(t *testing.T) {
	base := `version: 1
nodes:
  - {id: a, kind: data, plugin: noop}
  - {id: b, kind: data, plugin: noop, depends_on: [a], with: {x: 1}}
  - {id: c, kind: data, plugin: noop}
`
	edited := `version: 1
nodes:
  - {id: a, kind: data, plugin: noop, criticality: normal}
  - {id: b, kind: data, plugin: noop, depends_on: [a], with: {x: 2}, title: B}
  - {id: d, kind: data, plugin: noop}
`
	d := DiffGraphs(mustParse(t, "old.yaml", base), mustParse(t, "new.yaml", edited))
	want := Diff{Added: []string{"d"}, Removed: []string{"c"}, Changed: []string{"b"},
		Fields: map[string][]string{"b": {"with", "title"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff: got %+v want %+v", d, want)
	}

	// Metadata edits (title, estimate, criticality, timeout, retries, kind)
	// never change the step: listed apart, never Changed.
	meta := `version: 1
nodes:
  - {id: a, kind: data, plugin: noop, title: A, estimate: 1h, criticality: vital, timeout: 5m, retries: 3, owner: Dr Who, contact: "555", runbook: rb.md, rto: 4h}
  - {id: b, kind: data, plugin: noop, depends_on: [a], with: {x: 1}, title: renamed}
  - {id: c, kind: infrastructure, plugin: noop}
`
	d = DiffGraphs(mustParse(t, "old.yaml", base), mustParse(t, "new.yaml", meta))
	want = Diff{Metadata: []string{"a", "b", "c"}, Fields: map[string][]string{
		"a": {"title", "estimate", "criticality", "timeout", "retries", "owner", "contact", "runbook", "rto"}, "b": {"title"}, "c": {"kind"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff: got %+v want %+v", d, want)
	}

	// A plugin declaration re-pinned, one added, one removed: named in
	// Plugins; the nodes they serve are not Changed for that.
	plugins := func(decl string) string {
		return "version: 1\nplugins:\n" + decl + "nodes:\n  - {id: pacs, kind: application, plugin: pacs-vendor}\n"
	}
	oldG := mustParse(t, "old.yaml", plugins("  pacs-vendor: {path: ./pacs, sha256: "+strings.Repeat("a", 64)+"}\n  lab: {path: ./lab}\n  same: {path: ./same}\n"))
	newG := mustParse(t, "new.yaml", plugins("  pacs-vendor: {path: ./pacs, sha256: "+strings.Repeat("b", 64)+"}\n  pharma: {path: ./pharma}\n  same: {path: ./same}\n"))
	d = DiffGraphs(oldG, newG)
	want = Diff{Plugins: []string{"lab", "pacs-vendor", "pharma"}, Fields: map[string][]string{}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("plugins diff: got %+v want %+v", d, want)
	}
}

// TestAnalyzeHandBuilt: a Graph built in code (no Parse) analyses the same.
func TestAnalyzeHandBuilt(t *testing.T) {
	g := &Graph{Nodes: []*Node{
		{ID: "b", Kind: KindData, Plugin: "noop", DependsOn: []string{"a"}, Estimate: time.Hour},
		{ID: "a", Kind: KindData, Plugin: "noop", Criticality: CriticalityVital, Estimate: time.Hour},
	}}
	a := Analyze(g)
	if got := strings.Join(ids(g, a.Order), ","); got != "a,b" || a.CriticalDuration != 2*time.Hour || a.Effective[0] != CriticalityNormal {
		t.Errorf("order %s, critical %v, effective %v", got, a.CriticalDuration, a.Effective)
	}
}

// TestPlanJSONMatchesMarshal: the streamed JSON holds exactly what
// json.Marshal of the Plan holds.
func TestPlanJSONMatchesMarshal(t *testing.T) {
	for _, targets := range [][]string{nil, {"ris"}} {
		g := mustLoad(t, "testdata/small.yaml")
		if targets != nil {
			var err error
			if g, err = g.Subset(targets); err != nil {
				t.Fatal(err)
			}
		}
		p := NewPlan(g, targets, 3)
		var streamed bytes.Buffer
		if err := p.WriteJSON(&streamed); err != nil {
			t.Fatal(err)
		}
		marshalled, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(streamed.Bytes(), &a); err != nil {
			t.Fatalf("streamed JSON invalid: %v\n%s", err, streamed.String())
		}
		if err := json.Unmarshal(marshalled, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("streamed:\n%s\nmarshalled:\n%s", streamed.String(), marshalled)
		}
	}
}

// TestAnalyzeRandomDAGs checks Remaining, Effective, the critical path and
// the estimate against brute force on random small DAGs.
func TestAnalyzeRandomDAGs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	crits := []Criticality{CriticalityLow, CriticalityNormal, CriticalityHigh, CriticalityVital}
	for iter := 0; iter < 500; iter++ {
		n := 1 + rng.IntN(9)
		g := &Graph{}
		for i := 0; i < n; i++ {
			nd := &Node{ID: fmt.Sprintf("n%d", i), Kind: KindData, Plugin: "noop",
				Criticality: crits[rng.IntN(4)], Estimate: time.Duration(rng.IntN(5)) * time.Hour}
			for j := 0; j < i; j++ { // only earlier nodes: acyclic
				if rng.IntN(3) == 0 {
					nd.DependsOn = append(nd.DependsOn, fmt.Sprintf("n%d", j))
				}
			}
			g.Nodes = append(g.Nodes, nd)
		}
		a := Analyze(g)
		// dependents[v] by brute force, and longest path to a sink.
		var longest func(v int) time.Duration
		longest = func(v int) time.Duration {
			best := time.Duration(0)
			for w, nd := range g.Nodes {
				for _, d := range nd.DependsOn {
					if d == g.Nodes[v].ID {
						best = max(best, longest(w))
					}
				}
			}
			return g.Nodes[v].Estimate + best
		}
		var highest func(v int) int
		highest = func(v int) int {
			best := g.Nodes[v].Criticality.Rank()
			for w, nd := range g.Nodes {
				for _, d := range nd.DependsOn {
					if d == g.Nodes[v].ID {
						best = max(best, highest(w))
					}
				}
			}
			return best
		}
		var total, crit time.Duration
		for v := range g.Nodes {
			if got, want := a.Remaining[v], longest(v); got != want {
				t.Fatalf("iter %d node %d: remaining %v want %v", iter, v, got, want)
			}
			if got, want := a.Effective[v].Rank(), highest(v); got != want {
				t.Fatalf("iter %d node %d: effective rank %d want %d", iter, v, got, want)
			}
			total += g.Nodes[v].Estimate
			crit = max(crit, a.Remaining[v])
		}
		if a.CriticalDuration != crit {
			t.Fatalf("iter %d: critical duration %v want %v", iter, a.CriticalDuration, crit)
		}
		var sum time.Duration
		for k, v := range a.CriticalPath {
			sum += g.Nodes[v].Estimate
			if k > 0 && !contains(a.Deps[v], a.CriticalPath[k-1]) {
				t.Fatalf("iter %d: critical path %v is not a chain", iter, a.CriticalPath)
			}
		}
		if sum != crit {
			t.Fatalf("iter %d: critical path sums to %v, want %v", iter, sum, crit)
		}
		if got := EstimateDuration(g, a, n); got != crit {
			t.Fatalf("iter %d: unbounded parallelism gives %v, want the critical path %v", iter, got, crit)
		}
		if got := EstimateDuration(g, a, 1); got != total {
			t.Fatalf("iter %d: one worker gives %v, want the sum %v", iter, got, total)
		}
		for p := 2; p < n; p++ {
			if got := EstimateDuration(g, a, p); got < crit || got < total/time.Duration(p) || got > total {
				t.Fatalf("iter %d parallelism %d: %v outside [max(%v, %v/%d), %v]", iter, p, got, crit, total, p, total)
			}
		}
	}
}
