package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/graphs"
)

// Plugins started before their graph is parsed.
//
// Parsing a 10,000-node graph takes an agent 70 to 80 ms, and starting a
// plugin (process, handshake, mTLS) another 45 to 70: the first steps of a
// run would wait for both, one after the other. So the coordinator
// publishes, with the graph's first chunk, what an agent needs to start the
// plugins of its zone (a warmSpec, under warmKey), and an agent that sees it
// starts them at once, while it fetches and parses the graph.
//
// The spec is not covered by the graph's hash: once the graph is fetched and
// verified, the host started from the spec is checked against the one the
// graph gives (verifyEarly), before any step can reach it (every step gets
// its graph from the graphCache first, and the check runs there). If they
// differ, that host is closed and the steps build theirs from the graph.

// warmSuffix ends the key of a graph's warmSpec, beside the graph's chunks
// (ROOT/work/graphs/HASH.plugins): outside their prefix, so that an agent
// of an earlier version, which reads every key under it, is not misled.
const warmSuffix = ".plugins"

// warmKey is where the warmSpec of the graph of hash hash is published.
func warmKey(k Keys, hash string) string {
	return strings.TrimSuffix(k.Graph(hash), "/") + warmSuffix
}

// maxWarmSpec bounds a published warmSpec: it travels in one transaction
// with the graph's first chunk. A larger one (a graph with thousands of
// plugins) is not published: the agents then start the plugins once the
// graph is parsed, as without it.
const maxWarmSpec = 64 << 10

// warmSpec is what an agent needs to build the plugin host of a graph and
// to know which of its plugins to start: the options the host is built
// from (see hostSpecOf), and the plugins its nodes use with their zones.
type warmSpec struct {
	Name string `json:"name,omitempty"`
	// File is the name the graph is parsed under (its Dir follows from it,
	// on the agent's machine, as graphs.Parse makes it).
	File    string                      `json:"file"`
	Plugins map[string]graphs.PluginRef `json:"plugins,omitempty"`
	Limits  graphs.Limits               `json:"limits"`
	Uses    []pluginUse                 `json:"uses"`
}

// pluginUse lists the zones of the nodes of a plugin ("" for nodes without
// a zone), in node order.
type pluginUse struct {
	Plugin string   `json:"plugin"`
	Zones  []string `json:"zones"`
}

// warmSpecOf returns g's warmSpec.
func warmSpecOf(g *graphs.Graph) warmSpec {
	return warmSpec{Name: g.Name, File: g.File, Plugins: g.Plugins, Limits: g.Limits, Uses: usesOf(g)}
}

// usesOf lists g's plugins in the order of their first node, each with the
// zones of its nodes.
func usesOf(g *graphs.Graph) []pluginUse {
	var uses []pluginUse
	at := map[string]int{}
	for _, n := range g.Nodes {
		i, ok := at[n.Plugin]
		if !ok {
			i = len(uses)
			at[n.Plugin] = i
			uses = append(uses, pluginUse{Plugin: n.Plugin})
		}
		if !slices.Contains(uses[i].Zones, n.Zone) {
			uses[i].Zones = append(uses[i].Zones, n.Zone)
		}
	}
	return uses
}

// skeleton is the graph a plugin host is built from before the graph is
// parsed: the fields a host takes from it (File, Dir, Plugins, Limits), and
// no node. Dir is made from File as graphs.Parse makes it.
func (s *warmSpec) skeleton() *graphs.Graph {
	g := &graphs.Graph{Name: s.Name, File: s.File, Plugins: s.Plugins, Limits: s.Limits}
	if s.File != "" {
		if abs, err := filepath.Abs(s.File); err == nil {
			g.Dir = filepath.Dir(abs)
		}
	}
	return g
}

// sameHost reports whether the host built from skeleton sk is the one the
// parsed graph g gives: same file and folder, same plugins, same limits
// (AgentOptions.NewHost builds a host from those).
func sameHost(sk, g *graphs.Graph) bool {
	return sk.File == g.File && sk.Dir == g.Dir && sk.Limits == g.Limits && maps.Equal(sk.Plugins, g.Plugins)
}

// Test hooks (nil in production): testWarmed sees each plugin the agent
// started from a warmSpec (err: why it could not), testBeforeParse each
// graph fetched and verified, before it is parsed, testWarmUp each
// warm-up of a graph (warmEarly, warm) as it begins, with its context,
// and the function it returns as the warm-up ends.
var (
	testWarmed      atomic.Pointer[func(agent, hash, plugin string, err error)]
	testBeforeParse atomic.Pointer[func(hash string)]
	testWarmUp      atomic.Pointer[func(ctx context.Context, hash string) func()]
)

// errHostRetired: the host started from a warmSpec was found to differ
// from its graph's, and closed.
var errHostRetired = errors.New("plugin host retired: the plugins published with the graph differ from the graph's")

// warmEarly starts, in the background, the plugins of this agent's zone
// (and those of nodes without a zone) that the warmSpec val lists, for the
// graph of hash hash, before the graph is parsed. It does nothing when
// that graph is parsed already or its host exists (the usual warm then
// does it), or when the spec names none of this agent's plugins.
func (a *Agent) warmEarly(ctx context.Context, hash string, val []byte) {
	var s warmSpec
	if err := json.Unmarshal(val, &s); err != nil || s.File == "" {
		return
	}
	var plugins []string
	for _, u := range s.Uses {
		if slices.Contains(u.Zones, "") || slices.Contains(u.Zones, a.opts.Zone) {
			plugins = append(plugins, u.Plugin)
		}
	}
	if len(plugins) == 0 {
		return
	}
	sk := s.skeleton()
	hk := hash + "\x00" + s.File
	a.mu.Lock()
	// Under a.mu: a graph parsed after this check is verified against this
	// host (verifyEarly takes a.mu) before any of its gets returns.
	if ctx.Err() != nil || a.stopped || a.hosts[hk] != nil || parsedAlready(hash, s.File) {
		a.mu.Unlock()
		return
	}
	lh := a.newLocalHostLocked(hk, hash, sk, &s)
	a.mu.Unlock()
	defer a.release(lh)
	for _, p := range plugins {
		err := a.startEarly(ctx, lh, sk, p)
		if f := testWarmed.Load(); f != nil {
			(*f)(a.opts.Name, hash, p, err)
		}
		if errors.Is(err, errHostRetired) || lh.gone.Load() {
			return
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("start a plugin of a graph just published (its steps will fail or try again)", zap.String("graph", hash), zap.String("plugin", p), zap.Error(err))
		}
	}
}

// startEarly builds lh's host from sk if no one has, checks plugin's
// binary (as hostOf does, keeping the verdict for the steps) and starts it.
func (a *Agent) startEarly(ctx context.Context, lh *localHost, sk *graphs.Graph, plugin string) error {
	lh.once.Do(func() {
		if !lh.gone.Load() {
			lh.h = a.opts.NewHost(sk, a.log)
			lh.up.Store(true)
		}
	})
	if !lh.up.Load() || lh.gone.Load() {
		return errHostRetired
	}
	if err := lh.checkPin(ctx, plugin); err != nil {
		return fmt.Errorf("check plugin on this machine: %w", err)
	}
	if rd, ok := lh.h.(interface {
		Ready(context.Context, string) error
	}); ok {
		return rd.Ready(ctx, plugin)
	}
	return nil
}

// verifyEarly checks the host this agent started from a warmSpec for the
// graph of hash hash, parsed under file, once g (verified against hash) is
// there: the graphCache calls it before any get returns g. If the host is
// the one g gives, it serves g's steps (and when the spec also listed g's
// plugins and zones right, the usual warm has nothing to add); if not, it
// is closed and forgotten, and hostOf builds one from g.
func (a *Agent) verifyEarly(hash, file string, g *graphs.Graph) {
	hk := hash + "\x00" + file
	a.mu.Lock()
	lh := a.hosts[hk]
	if lh == nil || lh.early == nil {
		a.mu.Unlock()
		return
	}
	s := lh.early
	lh.early = nil
	if sameHost(lh.graph, g) {
		lh.graph = g
		lh.holdGraph(hash, g)
		lh.warmed = slices.EqualFunc(s.Uses, usesOf(g), func(x, y pluginUse) bool {
			return x.Plugin == y.Plugin && slices.Equal(x.Zones, y.Zones)
		})
		a.mu.Unlock()
		return
	}
	delete(a.hosts, hk)
	a.mu.Unlock()
	lh.gone.Store(true)
	a.log.Warn("the plugins published with a graph differ from the graph's own: the plugins started from them are stopped, and its steps start them from the graph",
		zap.String("graph", hash))
	lh.close()
}

// warmedEarly reports whether the plugins of the graph of hash hash,
// parsed under file, were started from its warmSpec, found right.
func (a *Agent) warmedEarly(hash, file string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	lh := a.hosts[hash+"\x00"+file]
	return lh != nil && lh.warmed
}
