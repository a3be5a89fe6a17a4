package host

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// NodeProblem is a problem a plugin found in one node's `with` config, or
// (Scanner set) a declared scanner that cannot be used.
type NodeProblem struct {
	NodeID  string
	Plugin  string
	Scanner string
	Pos     graphs.Position // the node's (or scanner's) position in the graph file
	Message string
}

// String returns "LINE:COL: node \"ID\": message" (or scanner "NAME").
func (p NodeProblem) String() string {
	if p.Scanner != "" {
		return fmt.Sprintf("%d:%d: scanner %q: %s", p.Pos.Line, p.Pos.Column, p.Scanner, p.Message)
	}
	return fmt.Sprintf("%d:%d: node %q: %s", p.Pos.Line, p.Pos.Column, p.NodeID, p.Message)
}

// ValidateTimeout bounds each node's Validate call in ValidateNodes.
const ValidateTimeout = 30 * time.Second

// ValidateNodes asks each node's plugin to validate its config (no side
// effects), 8 nodes at a time, and returns the problems in graph order. A
// plugin that cannot be started or answer is one problem for each of its
// nodes. Configs are sent as written (placeholders unresolved): plugins see
// "${env:…}" strings there. Each call gets ValidateTimeout.
func ValidateNodes(ctx context.Context, h step.Host, g *graphs.Graph) []NodeProblem {
	type result struct {
		index    int
		problems []NodeProblem
	}
	results := make([]result, len(g.Nodes))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, n := range g.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			req := step.Request{NodeID: n.ID, Kind: n.Kind, Plugin: n.Plugin, Attempt: 1,
				Config: n.With, Mode: step.ModeDryRun, WorkDir: g.Dir}
			cctx, cancel := context.WithTimeout(ctx, ValidateTimeout)
			msgs, err := h.Validate(cctx, req)
			cancel()
			if err != nil {
				msgs = []string{fmt.Sprintf("plugin %q could not validate: %v", n.Plugin, err)}
			}
			r := result{index: i}
			for _, m := range msgs {
				r.problems = append(r.problems, NodeProblem{NodeID: n.ID, Plugin: n.Plugin, Pos: n.Pos, Message: m})
			}
			results[i] = r
		}()
	}
	wg.Wait()
	sort.Slice(results, func(a, b int) bool { return results[a].index < results[b].index })
	var out []NodeProblem
	for _, r := range results {
		out = append(out, r.problems...)
	}
	return out
}
