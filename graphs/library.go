package graphs

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dominikbraun/graph"
)

// The graph library (github.com/dominikbraun/graph) explains cycles: when
// validation finds that a graph has one, the library's
// StronglyConnectedComponents finds the knots (see checkCycles). It works on
// depStore, a read-only view of the nodes left over by our own O(V+E)
// ordering, so a valid graph never pays for the library, and a cyclic one
// never copies its nodes and edges into the library's default store (maps of
// maps: about 2 s and 430 MB at 100,000 nodes). The hot paths (order, waves,
// closures, scheduling) stay on our own index-based code: the library's
// TopologicalSort and cycle checks are O(V²) in v0.23.0.

// errReadOnly is returned by depStore's writing methods.
var errReadOnly = errors.New("read-only view of a parsed graph")

// depStore is a graph.Store over node indexes: vertex k is node index k-1
// (the library's Tarjan loses a component whose head has the zero value as
// its key) and the edge k -> l says that node k-1 depends on node l-1. It
// serves the members only (the edges between members), from the deps lists
// it shares: building it costs one []bool. Keys are sorted.
type depStore struct {
	deps    [][]int
	members []int  // keys (index+1), sorted
	in      []bool // by node index
}

var _ graph.Store[int, int] = (*depStore)(nil)

// libraryView returns the graph library's directed graph over members (nil:
// every node) of the graph whose dependency lists are deps. Its keys are
// node indexes plus one.
func libraryView(deps [][]int, members []int) graph.Graph[int, int] {
	s := &depStore{deps: deps, in: make([]bool, len(deps))}
	if members == nil {
		members = make([]int, len(deps))
		for i := range members {
			members[i] = i
		}
	}
	for _, v := range members {
		if v >= 0 && v < len(deps) && !s.in[v] {
			s.in[v] = true
			s.members = append(s.members, v+1)
		}
	}
	slices.Sort(s.members)
	return graph.NewWithStore(func(v int) int { return v }, graph.Store[int, int](s), graph.Directed())
}

// has tells whether key k is a member.
func (s *depStore) has(k int) bool { return k >= 1 && k <= len(s.in) && s.in[k-1] }

func (s *depStore) AddVertex(int, int, graph.VertexProperties) error { return errReadOnly }
func (s *depStore) RemoveVertex(int) error                           { return errReadOnly }
func (s *depStore) AddEdge(int, int, graph.Edge[int]) error          { return errReadOnly }
func (s *depStore) UpdateEdge(int, int, graph.Edge[int]) error       { return errReadOnly }
func (s *depStore) RemoveEdge(int, int) error                        { return errReadOnly }

// Vertex returns k itself when it is a member.
func (s *depStore) Vertex(k int) (int, graph.VertexProperties, error) {
	if !s.has(k) {
		return 0, graph.VertexProperties{}, fmt.Errorf("node key %d: %w", k, graph.ErrVertexNotFound)
	}
	return k, graph.VertexProperties{Attributes: map[string]string{}}, nil
}

// ListVertices returns the members' keys, in order.
func (s *depStore) ListVertices() ([]int, error) { return s.members, nil }

// VertexCount returns the number of members.
func (s *depStore) VertexCount() (int, error) { return len(s.members), nil }

// Edge returns the edge k -> l when both are members and k depends on l.
func (s *depStore) Edge(k, l int) (graph.Edge[int], error) {
	if s.has(k) && s.has(l) && slices.Contains(s.deps[k-1], l-1) {
		return graph.Edge[int]{Source: k, Target: l, Properties: graph.EdgeProperties{Attributes: map[string]string{}}}, nil
	}
	return graph.Edge[int]{}, graph.ErrEdgeNotFound
}

// ListEdges returns every edge between members, sources in key order.
func (s *depStore) ListEdges() ([]graph.Edge[int], error) {
	var out []graph.Edge[int]
	for _, k := range s.members {
		for _, w := range s.deps[k-1] {
			if s.has(w + 1) {
				out = append(out, graph.Edge[int]{Source: k, Target: w + 1})
			}
		}
	}
	return out, nil
}
