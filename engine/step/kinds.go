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

// ErrNoPointList is returned when a node's graph entry says
// `restore_points: {from: plugin}` and its plugin does not declare
// ListRestorePoints in Describe.
var ErrNoPointList = errors.New("plugin does not list restore points")

// DescribeTimeout bounds each Describe call of CheckKinds (the plugin's
// start counts against its own start timeout, inside this one).
const DescribeTimeout = 30 * time.Second

// KindProblem is a node whose kind its plugin does not declare, or (with
// NoPointList) whose restore points its plugin cannot list.
type KindProblem struct {
	File    string          // the graph file ("" for in-memory graphs)
	Pos     graphs.Position // where the node's kind is written
	NodeID  string
	Kind    graphs.Kind
	Plugin  string
	Accepts []graphs.Kind // the kinds the plugin declares
	// NoPointList: the node's restore_points are {from: plugin} and its
	// plugin does not implement ListRestorePoints (Pos is then where
	// restore_points is written).
	NoPointList bool
}

// Field is the graph field the problem is about: "kind" or "restore_points".
func (p *KindProblem) Field() string {
	if p.NoPointList {
		return "restore_points"
	}
	return "kind"
}

// Message returns the problem without its file position:
// `plugin "lab" does not declare kind "interface" (its kinds: data, application)`.
func (p *KindProblem) Message() string {
	if p.NoPointList {
		return fmt.Sprintf("restore_points: {from: plugin}: plugin %q does not list restore points (it does not implement ListRestorePoints; list the points in the graph, or use a plugin that lists them)", p.Plugin)
	}
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

// Unwrap returns ErrKindNotAccepted, or ErrNoPointList.
func (p *KindProblem) Unwrap() error {
	if p.NoPointList {
		return ErrNoPointList
	}
	return ErrKindNotAccepted
}

// CheckKinds asks each plugin that the nodes of g use (only the nodes
// include marks, when include is not nil) for the kinds it declares, and
// returns a problem for each node whose kind is not among them, in graph
// order. A plugin that declares no kinds accepts every kind. A plugin whose
// Describe fails is not judged here: its nodes' own calls will report why
// it cannot serve them. A node with `restore_points: {from: plugin}` whose
// plugin does not declare ListRestorePoints is a problem too (NoPointList).
func CheckKinds(ctx context.Context, h Host, g *graphs.Graph, include []bool) []*KindProblem {
	var used []string
	for i, n := range g.Nodes {
		if (include == nil || include[i]) && !slices.Contains(used, n.Plugin) {
			used = append(used, n.Plugin)
		}
	}
	declared := make(map[string]PluginInfo, len(used))
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
			declared[name] = info
			mu.Unlock()
		}()
	}
	wg.Wait()
	var out []*KindProblem
	for i, n := range g.Nodes {
		info, ok := declared[n.Plugin]
		if !ok || (include != nil && !include[i]) {
			continue
		}
		if len(info.Kinds) > 0 && !slices.Contains(info.Kinds, n.Kind) {
			out = append(out, &KindProblem{File: g.File, Pos: n.KindPos, NodeID: n.ID, Kind: n.Kind, Plugin: n.Plugin, Accepts: info.Kinds})
		}
		if rp := n.RestorePoints; rp != nil && rp.FromPlugin && !info.ListsRestorePoints {
			out = append(out, &KindProblem{File: g.File, Pos: rp.Pos, NodeID: n.ID, Kind: n.Kind, Plugin: n.Plugin, NoPointList: true})
		}
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
