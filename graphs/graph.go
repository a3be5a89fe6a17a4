package graphs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Node returns the node with the given id.
func (g *Graph) Node(id string) (*Node, bool) {
	i, ok := g.Index(id)
	if !ok {
		return nil, false
	}
	return g.Nodes[i], true
}

// Index returns the position of the node with the given id in g.Nodes.
func (g *Graph) Index(id string) (int, bool) {
	if g.index == nil {
		g.buildIndex()
	}
	i, ok := g.index[id]
	return i, ok
}

// buildIndex indexes a Graph built by hand (not through Parse); not safe
// for concurrent use, unlike the index Parse builds.
func (g *Graph) buildIndex() {
	g.index = make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if _, dup := g.index[n.ID]; !dup {
			g.index[n.ID] = i
		}
	}
}

// NodeTimeout returns the node's timeout, else the graph's default, else
// DefaultTimeout.
func (g *Graph) NodeTimeout(n *Node) time.Duration {
	switch {
	case n.Timeout > 0:
		return n.Timeout
	case g.Defaults.Timeout > 0:
		return g.Defaults.Timeout
	}
	return DefaultTimeout
}

// NodeRetries returns the node's retries, else the graph's default (0 when
// the graph says nothing).
func (g *Graph) NodeRetries(n *Node) int {
	if n.Retries != nil {
		return *n.Retries
	}
	return g.Defaults.Retries
}

// RetryDelay returns the graph's retry delay, else DefaultRetryDelay.
func (g *Graph) RetryDelay() time.Duration {
	if g.Defaults.RetryDelay > 0 {
		return g.Defaults.RetryDelay
	}
	return DefaultRetryDelay
}

// Hash returns the sha256 of the graph file's content, in lowercase hex
// (for a graph read from its rendition: that of the file it renders).
func (g *Graph) Hash() string {
	if g.sourceHash != "" {
		return g.sourceHash
	}
	sum := sha256.Sum256(g.Source)
	return hex.EncodeToString(sum[:])
}

// EdgeCount returns the number of effective dependencies (depends_on and
// between, without duplicates).
func (g *Graph) EdgeCount() int {
	total := 0
	for _, n := range g.Nodes {
		total += len(n.Deps())
	}
	return total
}

// KindCounts returns how many nodes of each kind the graph has.
func (g *Graph) KindCounts() map[Kind]int {
	out := make(map[Kind]int, len(Kinds))
	for _, n := range g.Nodes {
		out[n.Kind]++
	}
	return out
}

// Subset returns a graph holding the targets and every node they depend
// on, transitively, in g's node order; the rest (plugins, defaults, File,
// Source) is shared with g. An unknown target is an error naming it and the
// closest id.
func (g *Graph) Subset(targets []string) (*Graph, error) {
	var starts []int
	var unknown []string
	for _, t := range targets {
		i, ok := g.Index(t)
		if !ok {
			unknown = append(unknown, t)
			continue
		}
		starts = append(starts, i)
	}
	if len(unknown) > 0 {
		ids := make([]string, len(g.Nodes))
		for i, n := range g.Nodes {
			ids[i] = n.ID
		}
		sort.Strings(ids)
		msgs := make([]string, len(unknown))
		for i, u := range unknown {
			msgs[i] = fmt.Sprintf("%q", u)
			if c := closest(u, ids); c != "" {
				msgs[i] += fmt.Sprintf(" (did you mean %q?)", c)
			}
		}
		return nil, fmt.Errorf("target %s: %w", strings.Join(msgs, ", "), ErrUnknownNode)
	}
	keep := Reach(effectiveDeps(g), starts, nil)
	sub := *g
	sub.Nodes = make([]*Node, 0, len(starts))
	for i, n := range g.Nodes {
		if keep[i] {
			sub.Nodes = append(sub.Nodes, n)
		}
	}
	sub.index, sub.deps = nil, nil
	sub.buildIndex()
	return &sub, nil
}
