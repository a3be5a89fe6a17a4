package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/etcdtest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// warmRig counts what an agent's plugin hosts do: the hosts built (with
// the graph each was built from), closed, and the plugin processes started.
type warmRig struct {
	mu     sync.Mutex
	built  []*graphs.Graph
	hosts  []*countedHost
	starts map[string]int // plugin → processes started
	mark   string         // if set, in the plugin processes' environment (markedProcs)
}

type countedHost struct {
	*host.Host
	closed bool
	rig    *warmRig
}

func (h *countedHost) Close() error {
	h.rig.mu.Lock()
	h.closed = true
	h.rig.mu.Unlock()
	return h.Host.Close()
}

func (r *warmRig) newHost(g *graphs.Graph, log *zap.Logger) step.Host {
	h := &countedHost{rig: r}
	h.Host = host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, Logger: log, Limits: g.Limits,
		BuiltinCommand: func(name string) *exec.Cmd {
			r.mu.Lock()
			r.starts[name]++
			r.mu.Unlock()
			cmd := hosttest.BuiltinCommand(name)
			if r.mark != "" {
				cmd.Env = append(cmd.Env, envMark+"="+r.mark)
			}
			return cmd
		}})
	r.mu.Lock()
	r.built = append(r.built, g)
	r.hosts = append(r.hosts, h)
	r.mu.Unlock()
	return h
}

// startWarmAgent runs an agent of zone in this test, its hosts counted by
// a new rig, its log lines of level Warn and up observed.
func startWarmAgent(t *testing.T, c *etcdtest.Cluster, k Keys, name, zone string) (*Agent, *warmRig, *observer.ObservedLogs) {
	t.Helper()
	rig := &warmRig{starts: map[string]int{}}
	core, logs := observer.New(zapcore.WarnLevel)
	a := NewAgent(AgentOptions{Client: c.Client(t), Keys: k, Name: name, Zone: zone, Slots: 2, TTL: 5 * time.Second,
		NewHost: rig.newHost, Logger: zap.New(core)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	drain, stopDrain := context.WithCancel(context.Background())
	hard, stopHard := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(drain, hard) }()
	t.Cleanup(func() {
		stopDrain()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			stopHard()
			<-done
		}
		stopHard()
	})
	// The agent watches the publications from its start: let its watch
	// be in place.
	time.Sleep(500 * time.Millisecond)
	return a, rig, logs
}

// warmGraph writes and loads a graph: n noop nodes in zone core, a node of
// plugin exec in zone other, and extra lines.
func warmGraph(t *testing.T, name string, n int, plugins, extra string) *graphs.Graph {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: " + name + "\nzones:\n  - {id: core, title: Core}\n  - {id: other, title: Other}\n" + plugins + "nodes:\n")
	for i := range n {
		b.WriteString("  - {id: n" + strconv.Itoa(i) + ", kind: application, plugin: noop, zone: core}\n")
	}
	b.WriteString("  - {id: elsewhere, kind: application, plugin: exec, zone: other, with: {restore: [\"true\"]}}\n")
	b.WriteString(extra)
	path := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// setHooks sets the test hooks until the test ends.
func setHooks(t *testing.T, warmed func(agent, hash, plugin string, err error), beforeParse func(hash string)) {
	if warmed != nil {
		testWarmed.Store(&warmed)
	}
	if beforeParse != nil {
		testBeforeParse.Store(&beforeParse)
	}
	t.Cleanup(func() { testWarmed.Store(nil); testBeforeParse.Store(nil) })
}

// runStep runs node's restore on agent a as a claimed item would.
func runStep(t *testing.T, a *Agent, g *graphs.Graph, node string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, _ := g.Node(node)
	return a.call(ctx, Item{Call: "c-" + node, Op: opRestore, Zone: n.Zone, Graph: g.Hash(), GraphFile: g.File,
		Req: step.Request{RunID: "r1", NodeID: node, Kind: n.Kind, Plugin: n.Plugin, Attempt: 1, WorkDir: g.Dir}}, nil)
}

// TestWarmBeforeParse: an agent starts the plugins of its zone from the
// plugins published with a graph, before the graph is parsed (the parse
// waits here until they are up); the host it started is the one the steps
// use, and no plugin starts twice; a plugin of another zone is not
// started.
func TestWarmBeforeParse(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("warm1")
	g := warmGraph(t, "warm-before-parse", 500, "", "")
	hash := g.Hash()
	a, rig, logs := startWarmAgent(t, c, k, "core-1", "core")

	up := make(chan error, 1)
	var order []string
	var mu sync.Mutex
	setHooks(t, func(agent, h, plugin string, err error) {
		if h == hash {
			mu.Lock()
			order = append(order, "warmed "+plugin)
			mu.Unlock()
			up <- err
		}
	}, func(h string) {
		if h != hash {
			return
		}
		select {
		case <-up:
		case <-time.After(20 * time.Second):
		}
		mu.Lock()
		order = append(order, "parse")
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := publishGraph(ctx, cli, k, g, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := a.graphs.get(ctx, hash, g.File); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(order, ", ")
	mu.Unlock()
	if got != "warmed noop, parse" {
		t.Fatalf("order: %q, want the plugin started before the graph was parsed", got)
	}
	for _, node := range []string{"n0", "n1", "n499"} {
		if res := runStep(t, a, g, node); res.Error != "" || res.Status != step.Succeeded {
			t.Fatalf("%s: %+v", node, res)
		}
	}
	time.Sleep(300 * time.Millisecond) // the warm after the parse, if it (wrongly) ran
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.built) != 1 || rig.built[0].File != g.File || rig.built[0].Dir != g.Dir || len(rig.built[0].Nodes) != 0 {
		t.Errorf("hosts built: %d (want one, from the plugins published with the graph)", len(rig.built))
	}
	if rig.starts["noop"] != 1 || rig.starts["exec"] != 0 || len(rig.hosts) > 0 && rig.hosts[0].closed {
		t.Errorf("plugin processes started: %v, want noop once and no exec (zone other); closed: %v", rig.starts, rig.hosts[0].closed)
	}
	a.mu.Lock()
	lh := a.hosts[hash+"\x00"+g.File]
	a.mu.Unlock()
	if lh == nil || lh.graph.Hash() != hash || !lh.warmed || lh.early != nil {
		t.Errorf("the host is not verified against the parsed graph: %+v", lh)
	}
	for _, e := range logs.All() {
		t.Errorf("logged: %s %v", e.Message, e.ContextMap())
	}
}

// TestWarmPinMismatchReported: a plugin whose pinned checksum does not
// match on the agent's machine is reported when the graph is published,
// before the graph is parsed, once; its steps fail for it.
func TestWarmPinMismatchReported(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("warm2")
	bin := filepath.Join(t.TempDir(), "changed-plugin")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho not the pinned binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	g := warmGraph(t, "warm-pin", 3, "plugins:\n  pharmacy: {path: "+bin+", sha256: \""+strings.Repeat("ab", 32)+"\"}\n",
		"  - {id: pharma, kind: application, plugin: pharmacy, zone: core}\n")
	hash := g.Hash()
	a, rig, logs := startWarmAgent(t, c, k, "core-1", "core")
	warned := make(chan error, 4)
	setHooks(t, func(agent, h, plugin string, err error) {
		if h == hash && plugin == "pharmacy" {
			warned <- err
		}
	}, func(h string) {
		if h == hash {
			select {
			case err := <-warned:
				warned <- err
			case <-time.After(20 * time.Second):
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := publishGraph(ctx, cli, k, g, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := a.graphs.get(ctx, hash, g.File); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-warned:
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("pharmacy started from the published plugins: %v, want a checksum mismatch", err)
		}
	default:
		t.Fatal("pharmacy was not checked before the graph was parsed")
	}
	time.Sleep(300 * time.Millisecond) // the warm after the parse, if it (wrongly) ran
	n := 0
	for _, e := range logs.All() {
		if e.ContextMap()["plugin"] == "pharmacy" && strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "checksum mismatch") {
			n++
		} else {
			t.Errorf("logged: %s %v", e.Message, e.ContextMap())
		}
	}
	if n != 1 {
		t.Errorf("the pin mismatch was logged %d times, want once", n)
	}
	if res := runStep(t, a, g, "pharma"); !res.Permanent || !strings.Contains(res.Error, "checksum mismatch") {
		t.Errorf("pharma's step: %+v, want a permanent checksum mismatch", res)
	}
	if res := runStep(t, a, g, "n1"); res.Error != "" || res.Status != step.Succeeded {
		t.Errorf("n1: %+v", res)
	}
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.built) != 1 || rig.starts["noop"] != 1 || rig.starts["pharmacy"] != 0 {
		t.Errorf("hosts built %d, processes %v: want one host, noop once", len(rig.built), rig.starts)
	}
}

// TestWarmTamperedSpec: plugins published with a graph that differ from
// the graph's own (here its output limits) start a host, but once the
// graph is verified that host is closed, and the steps run in one built
// from the graph.
func TestWarmTamperedSpec(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("warm3")
	g := warmGraph(t, "warm-tampered", 3, "", "")
	hash := g.Hash()
	a, rig, logs := startWarmAgent(t, c, k, "core-1", "core")
	up := make(chan error, 4)
	setHooks(t, func(agent, h, plugin string, err error) {
		if h == hash {
			up <- err
		}
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := warmSpecOf(g)
	bad.Limits.OutputValue = 12345
	val, _ := json.Marshal(bad)
	if _, err := cli.Put(ctx, warmKey(k, hash), string(val)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-up:
		if err != nil {
			t.Fatalf("noop from the tampered spec: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the agent did not start noop from the published plugins")
	}
	if err := publishGraph(ctx, cli, k, g, hash); err != nil { // its own (right) spec comes too late: ignored
		t.Fatal(err)
	}
	if res := runStep(t, a, g, "n0"); res.Error != "" || res.Status != step.Succeeded {
		t.Fatalf("n0: %+v", res)
	}
	a.mu.Lock()
	lh := a.hosts[hash+"\x00"+g.File]
	a.mu.Unlock()
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if len(rig.built) != 2 || rig.built[0].Limits.OutputValue != 12345 || rig.built[1].Hash() != hash {
		t.Fatalf("hosts built from %d graphs, want the tampered spec's then the graph", len(rig.built))
	}
	if !rig.hosts[0].closed || rig.hosts[1].closed {
		t.Errorf("closed: tampered host %v, graph's host %v", rig.hosts[0].closed, rig.hosts[1].closed)
	}
	if lh == nil || lh.h != step.Host(rig.hosts[1]) || lh.graph.Hash() != hash {
		t.Errorf("the steps' host is not the graph's")
	}
	var warned bool
	for _, e := range logs.All() {
		warned = warned || strings.Contains(e.Message, "differ from the graph's own")
	}
	if !warned {
		t.Errorf("no warning about the tampered plugins: %v", logs.All())
	}
}
