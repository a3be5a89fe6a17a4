package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// PlanAction says what a run would do with a node.
type PlanAction string

// The plan actions of a dry run.
const (
	ActionRestore     PlanAction = "restore"      // would run its restore step
	ActionRestored    PlanAction = "restored"     // Check says it is already restored: would be run anyway (Check is not consulted on a fresh run)
	ActionNotTargeted PlanAction = "not-targeted" // outside --target: skipped
	ActionInvalid     PlanAction = "invalid"      // its plugin refuses its config
)

// PlanItem is what a dry run found for one node.
type PlanItem struct {
	ID          string             `json:"id"`
	Kind        graphs.Kind        `json:"kind"`
	Plugin      string             `json:"plugin"`
	Criticality graphs.Criticality `json:"criticality"` // effective
	Action      PlanAction         `json:"action"`
	Problems    []string           `json:"problems,omitempty"` // from Validate
	Check       string             `json:"check,omitempty"`    // Check's message
	Error       string             `json:"error,omitempty"`    // a call that failed
}

// DryRun validates every node of g that a run would include and asks its
// plugin whether it is already restored (Validate and Check only: no side
// effects, nothing written to the state store). Items come in dependency
// order. Node outputs that are not known yet stay as their placeholders.
func (e *Engine) DryRun(ctx context.Context, g *graphs.Graph) ([]PlanItem, error) {
	a := graphs.Analyze(g)
	include, err := targetSet(g, a, e.opts.Targets)
	if err != nil {
		return nil, err
	}
	badKind := map[string]*step.KindProblem{}
	for _, p := range step.CheckKinds(ctx, e.hostOf(g), g, include) {
		badKind[p.NodeID] = p
	}
	items := make([]PlanItem, len(g.Nodes))
	sem := make(chan struct{}, e.opts.Parallelism)
	var wg sync.WaitGroup
	for i, n := range g.Nodes {
		eff := n.Criticality
		if i < len(a.Effective) {
			eff = a.Effective[i]
		}
		items[i] = PlanItem{ID: n.ID, Kind: n.Kind, Plugin: n.Plugin, Criticality: eff, Action: ActionRestore}
		if include != nil && !include[i] {
			items[i].Action = ActionNotTargeted
			continue
		}
		if p := badKind[n.ID]; p != nil {
			items[i].Action = ActionInvalid
			items[i].Problems = []string{p.Message()}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.dryRunNode(ctx, g, n, &items[i])
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]PlanItem, 0, len(items))
	for _, i := range a.Order {
		out = append(out, items[i])
	}
	return out, nil
}

func (e *Engine) dryRunNode(ctx context.Context, g *graphs.Graph, n *graphs.Node, it *PlanItem) {
	req := step.Request{NodeID: n.ID, Kind: n.Kind, Plugin: n.Plugin, Attempt: 1, Mode: step.ModeDryRun, WorkDir: g.Dir, Drill: e.opts.Drill}
	cfg, err := e.resolveConfig(n, g.Dir, nil, true)
	if err != nil {
		it.Action = ActionInvalid
		it.Error = e.red.String(fmt.Sprintf("resolve config: %v", err))
		return
	}
	req.Config = cfg
	cctx, cancel := context.WithTimeout(ctx, g.NodeTimeout(n))
	defer cancel()
	problems, err := e.hostOf(g).Validate(cctx, req)
	if err != nil {
		it.Action = ActionInvalid
		it.Error = e.red.String("validate: " + err.Error())
		return
	}
	// An output not known yet stays as its placeholder text: a plugin that
	// parses the value (a URL) would call it malformed. Say what it is.
	unknown := unknownOutputs(n)
	var notes []string
	for _, p := range problems {
		if note := unknownNote(p, unknown); note != "" {
			notes = appendOnce(notes, note)
			continue
		}
		it.Problems = append(it.Problems, e.red.String(p))
	}
	if len(it.Problems) > 0 {
		it.Action = ActionInvalid
		return
	}
	cr, err := e.hostOf(g).Check(cctx, req)
	switch {
	case err != nil && unknownNote(err.Error(), unknown) != "":
		notes = appendOnce(notes, unknownNote(err.Error(), unknown))
	case err != nil:
		it.Error = e.red.String("check: " + err.Error())
		return
	case unknownNote(cr.Message, unknown) != "":
		notes = appendOnce(notes, unknownNote(cr.Message, unknown))
	}
	if len(notes) > 0 {
		it.Check = strings.Join(notes, "; ")
		return
	}
	it.Check = e.red.String(cr.Message)
	if cr.Restored {
		it.Action = ActionRestored
	}
}

// unknownOutputs are the node's ${nodes.X.outputs.K} placeholders, by the
// node they wait for: in a dry run no output is known yet.
func unknownOutputs(n *graphs.Node) map[string]string {
	out := map[string]string{}
	for _, ref := range graphs.Refs(n.With) {
		if ref.Node != "" {
			out[ref.String()] = ref.Node
		}
	}
	return out
}

// unknownNote is `${nodes.X.outputs.K} (known once X has run)` when msg (a
// plugin's complaint) is about a placeholder of unknown, else "".
func unknownNote(msg string, unknown map[string]string) string {
	for p, node := range unknown {
		if strings.Contains(msg, p) {
			return fmt.Sprintf("%s (known once %s has run)", p, node)
		}
	}
	return ""
}

func appendOnce(list []string, s string) []string {
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}
