package host

import (
	"context"
	"fmt"
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
	Pos     graphs.Position // the node's (or scanner's) position in the graph file (of the node's kind, for Field "kind")
	Field   string          // "with" (the plugin's Validate), "kind" (a kind the plugin does not declare) or "" (a scanner)
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

// ValidateNodes checks each node's kind against the kinds its plugin
// declares (step.CheckKinds), asks each node's plugin to validate its
// config (no side effects), 8 nodes at a time, and returns the problems in
// graph order, a node's kind before its config. A
// plugin that cannot be started or answer is one problem for each of its
// nodes. Configs are sent as written (placeholders unresolved): plugins see
// "${env:…}" strings there. Each call gets ValidateTimeout.
func ValidateNodes(ctx context.Context, h step.Host, g *graphs.Graph) []NodeProblem {
	type result struct {
		kind     *NodeProblem
		problems []NodeProblem
	}
	results := make([]result, len(g.Nodes))
	for _, p := range step.CheckKinds(ctx, h, g, nil) {
		i, _ := g.Index(p.NodeID)
		if results[i].kind != nil { // a kind and a restore-points problem: keep both
			results[i].problems = append(results[i].problems, *results[i].kind)
		}
		results[i].kind = &NodeProblem{NodeID: p.NodeID, Plugin: p.Plugin, Pos: p.Pos, Field: p.Field(), Message: p.Message()}
	}
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
			r := &results[i] // each goroutine writes its own element
			for _, m := range msgs {
				r.problems = append(r.problems, NodeProblem{NodeID: n.ID, Plugin: n.Plugin, Pos: n.Pos, Field: "with", Message: m})
			}
		}()
	}
	wg.Wait()
	var out []NodeProblem
	for _, r := range results {
		if r.kind != nil {
			out = append(out, *r.kind)
		}
		out = append(out, r.problems...)
	}
	return out
}
