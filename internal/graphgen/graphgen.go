// Package graphgen generates large synthetic graph files for benchmarks and
// tests: a layered DAG with a chosen number of nodes and about a chosen
// number of edges, deterministic for a seed, kinds and criticalities mixed,
// interfaces between two earlier nodes.
package graphgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Options choose the graph. The zero value gives 1,000 nodes, about 2,000
// edges, seed 1, plugin noop.
type Options struct {
	Nodes int    // 0: 1000
	Edges int    // about this many dependencies in all; 0: twice Nodes
	Seed  uint64 // 0: 1
	// Plugin is "noop" (default) or "exec": exec nodes get a `with` whose
	// command records an output, and which passes the first dependency's
	// output on through an ${nodes.ID.outputs.KEY} placeholder.
	Plugin string
	// Width is the number of nodes per layer; 0: about the square root of
	// Nodes times two.
	Width int
	// Zones is the number of trust zones (0: none). The layers are split
	// among them in order, most trusted first; an interface belongs to the
	// least trusted zone it depends on, as the format wants.
	Zones int
}

// Doc is a graph file, in the field names of graph file version 1.
type Doc struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Zones   []Zone `json:"zones,omitempty"`
	Nodes   []Node `json:"nodes"`
}

// Zone is one trust zone of a Doc.
type Zone struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
}

// Node is one node of a Doc.
type Node struct {
	ID          string         `json:"id"`
	Kind        string         `json:"kind"`
	Title       string         `json:"title,omitempty"`
	Plugin      string         `json:"plugin"`
	DependsOn   []string       `json:"depends_on,omitempty"`
	Between     []string       `json:"between,omitempty"`
	Criticality string         `json:"criticality,omitempty"`
	Estimate    string         `json:"estimate,omitempty"`
	Zone        string         `json:"zone,omitempty"`
	With        map[string]any `json:"with,omitempty"`
}

var (
	criticalities = []string{"vital", "high", "normal", "normal", "low"}
	estimates     = []string{"5m", "15m", "30m", "1h", "2h", "4h", "8h"}
)

// Generate builds the graph. Node i lies on layer i/Width and depends only
// on nodes of earlier layers, so the graph is acyclic; most dependencies
// reach one to three layers back.
func Generate(opts Options) *Doc {
	n := opts.Nodes
	if n <= 0 {
		n = 1000
	}
	edges := opts.Edges
	if edges <= 0 {
		edges = 2 * n
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 1
	}
	width := opts.Width
	if width <= 0 {
		width = 2
		for width*width < 4*n {
			width++
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	doc := &Doc{Version: 1, Name: fmt.Sprintf("synthetic-%d", n), Nodes: make([]Node, n)}
	// Nodes after the first layer share the edges; an interface takes two.
	perNode := float64(edges) / float64(max(1, n-width))
	for i := range doc.Nodes {
		layer := i / width
		nd := Node{
			ID:          fmt.Sprintf("n%06d", i),
			Plugin:      "noop",
			Criticality: criticalities[rng.IntN(len(criticalities))],
			Estimate:    estimates[rng.IntN(len(estimates))],
		}
		switch {
		case layer == 0 || rng.IntN(100) < 10:
			nd.Kind = "infrastructure"
		case rng.IntN(100) < 20:
			nd.Kind = "interface"
		case rng.IntN(100) < 20:
			nd.Kind = "data"
		default:
			nd.Kind = "application"
		}
		if layer > 0 {
			want := int(perNode)
			if rng.Float64() < perNode-float64(want) {
				want++
			}
			picked := pick(rng, i, layer, width, want+1)
			if nd.Kind == "interface" && len(picked) >= 2 {
				nd.Between = picked[:2]
				if want > 2 {
					nd.DependsOn = picked[2:want]
				}
			} else {
				if nd.Kind == "interface" {
					nd.Kind = "application"
				}
				nd.DependsOn = picked[:min(want, len(picked))]
			}
		}
		if opts.Plugin == "exec" {
			nd.Plugin = "exec"
			nd.With = map[string]any{"restore": []any{"sh", "-c", `echo done=1 >> "$REPRISE_OUTPUT"`}}
			if deps := append(append([]string{}, nd.DependsOn...), nd.Between...); len(deps) > 0 {
				nd.With["env"] = map[string]any{"UPSTREAM_DONE": "${nodes." + deps[0] + ".outputs.done}"}
			}
		}
		doc.Nodes[i] = nd
	}
	zoneNodes(doc, opts.Zones, width)
	return doc
}

// zoneNodes puts the nodes of doc in k trust zones by layer.
func zoneNodes(doc *Doc, k, width int) {
	if k <= 0 {
		return
	}
	layers := (len(doc.Nodes) + width - 1) / width
	for z := 0; z < k; z++ {
		doc.Zones = append(doc.Zones, Zone{ID: fmt.Sprintf("z%d", z+1), Title: fmt.Sprintf("trust level %d", z+1)})
	}
	rank := make(map[string]int, len(doc.Nodes))
	for i := range doc.Nodes {
		nd := &doc.Nodes[i]
		r := min(k-1, (i/width)*k/max(1, layers))
		if nd.Kind == "interface" {
			r = 0
			for _, d := range append(append([]string{}, nd.Between...), nd.DependsOn...) {
				r = max(r, rank[d])
			}
		}
		rank[nd.ID] = r
		nd.Zone = doc.Zones[r].ID
	}
}

// pick returns up to k distinct ids of nodes on layers before layer, most
// of them one to three layers back.
func pick(rng *rand.Rand, i, layer, width, k int) []string {
	out := make([]string, 0, k)
	seen := make(map[int]bool, k)
	for tries := 0; len(out) < k && tries < 4*k+8; tries++ {
		back := 1 + rng.IntN(min(layer, 3))
		if rng.IntN(10) == 0 {
			back = 1 + rng.IntN(layer)
		}
		j := (layer-back)*width + rng.IntN(width)
		if j >= i || seen[j] {
			continue
		}
		seen[j] = true
		out = append(out, fmt.Sprintf("n%06d", j))
	}
	return out
}

// Edges counts the doc's dependencies (depends_on and between).
func (d *Doc) Edges() int {
	total := 0
	for _, n := range d.Nodes {
		total += len(n.DependsOn) + len(n.Between)
	}
	return total
}

// WriteJSON writes the doc as a JSON graph file, one node per line.
func (d *Doc) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "{\"version\": %d, \"name\": %q, \"nodes\": [\n", d.Version, d.Name)
	for i := range d.Nodes {
		b, err := json.Marshal(&d.Nodes[i])
		if err != nil {
			return err
		}
		bw.Write(b)
		if i < len(d.Nodes)-1 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// WriteYAML writes the doc as a YAML graph file in block style.
func (d *Doc) WriteYAML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "version: %d\nname: %s\n", d.Version, d.Name)
	if len(d.Zones) > 0 {
		bw.WriteString("zones:\n")
		for _, z := range d.Zones {
			fmt.Fprintf(bw, "  - {id: %s, title: %s}\n", z.ID, strconv.Quote(z.Title))
		}
	}
	bw.WriteString("nodes:\n")
	for _, n := range d.Nodes {
		fmt.Fprintf(bw, "  - id: %s\n    kind: %s\n    plugin: %s\n", n.ID, n.Kind, n.Plugin)
		if n.Zone != "" {
			fmt.Fprintf(bw, "    zone: %s\n", n.Zone)
		}
		if n.Title != "" {
			fmt.Fprintf(bw, "    title: %s\n", strconv.Quote(n.Title))
		}
		if len(n.DependsOn) > 0 {
			fmt.Fprintf(bw, "    depends_on: [%s]\n", strings.Join(n.DependsOn, ", "))
		}
		if len(n.Between) > 0 {
			fmt.Fprintf(bw, "    between: [%s]\n", strings.Join(n.Between, ", "))
		}
		if n.Criticality != "" {
			fmt.Fprintf(bw, "    criticality: %s\n", n.Criticality)
		}
		if n.Estimate != "" {
			fmt.Fprintf(bw, "    estimate: %s\n", n.Estimate)
		}
		if n.With != nil {
			// JSON is YAML: the flow form keeps quoting right.
			b, err := json.Marshal(n.With)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "    with: %s\n", b)
		}
	}
	return bw.Flush()
}
