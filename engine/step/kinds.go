package step

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reprise-si/reprise/graphs"
)

// ErrKindNotAccepted is returned when a node's kind is not one its plugin
// declares in Describe.
var ErrKindNotAccepted = errors.New("kind not accepted by plugin")

// DescribeTimeout bounds each Describe call of CheckKinds (the plugin's
// start counts against its own start timeout, inside this one).
const DescribeTimeout = 30 * time.Second

// KindProblem is a node whose kind its plugin does not declare.
type KindProblem struct {
	File    string          // the graph file ("" for in-memory graphs)
	Pos     graphs.Position // where the node's kind is written
	NodeID  string
	Kind    graphs.Kind
	Plugin  string
	Accepts []graphs.Kind // the kinds the plugin declares
}

// Message returns the problem without its file position:
// `plugin "lab" does not declare kind "interface" (its kinds: data, application)`.
func (p *KindProblem) Message() string {
	accepts := make([]string, len(p.Accepts))
	for i, k := range p.Accepts {
		accepts[i] = string(k)
	}
	return fmt.Sprintf("plugin %q does not declare kind %q (its kinds: %s)", p.Plugin, p.Kind, strings.Join(accepts, ", "))
}

// Error returns `FILE:LINE:COL: node "ID": ` and the message.
func (p *KindProblem) Error() string {
	file := p.File
	if file == "" {
		file = "<input>"
	}
	return fmt.Sprintf("%s:%d:%d: node %q: %s", file, p.Pos.Line, p.Pos.Column, p.NodeID, p.Message())
}

// Unwrap returns ErrKindNotAccepted.
func (p *KindProblem) Unwrap() error { return ErrKindNotAccepted }

// CheckKinds asks each plugin that the nodes of g use (only the nodes
// include marks, when include is not nil) for the kinds it declares, and
// returns a problem for each node whose kind is not among them, in graph
// order. A plugin that declares no kinds accepts every kind. A plugin whose
// Describe fails is not judged here: its nodes' own calls will report why
// it cannot serve them.
func CheckKinds(ctx context.Context, h Host, g *graphs.Graph, include []bool) []*KindProblem {
	var used []string
	for i, n := range g.Nodes {
		if (include == nil || include[i]) && !slices.Contains(used, n.Plugin) {
			used = append(used, n.Plugin)
		}
	}
	declared := make(map[string][]graphs.Kind, len(used))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range used {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, DescribeTimeout)
			defer cancel()
			info, err := h.Describe(cctx, name)
			if err != nil {
				return
			}
			mu.Lock()
			declared[name] = info.Kinds
			mu.Unlock()
		}()
	}
	wg.Wait()
	var out []*KindProblem
	for i, n := range g.Nodes {
		accepts := declared[n.Plugin]
		if (include != nil && !include[i]) || len(accepts) == 0 || slices.Contains(accepts, n.Kind) {
			continue
		}
		out = append(out, &KindProblem{File: g.File, Pos: n.KindPos, NodeID: n.ID, Kind: n.Kind, Plugin: n.Plugin, Accepts: accepts})
	}
	return out
}

// KindsError joins the problems of CheckKinds into one error (nil when
// there are none).
func KindsError(problems []*KindProblem) error {
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}
