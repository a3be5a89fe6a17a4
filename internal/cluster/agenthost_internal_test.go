package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// closingHost is a plugin host that only knows whether it was closed.
type closingHost struct {
	step.Host
	closed atomic.Bool
}

func (h *closingHost) Close() error { h.closed.Store(true); return nil }

// TestHostNeverClosedUnderACall: calls take a graph's host while idle
// hosts are closed as fast as can be (an idle period of a nanosecond):
// no call ever gets a closed host or sees it closed while it holds it,
// and hosts are closed and built again meanwhile. Run with -race.
func TestHostNeverClosedUnderACall(t *testing.T) {
	var built atomic.Int64
	a := NewAgent(AgentOptions{Name: "a", Zone: "z", HostIdle: time.Nanosecond, Logger: zap.NewNop(),
		NewHost: func(*graphs.Graph, *zap.Logger) step.Host { built.Add(1); return &closingHost{} }})
	g := &graphs.Graph{Name: "g", File: "g.yaml"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			a.closeIdle(time.Now().Add(time.Hour))
		}
	}()
	var calls sync.WaitGroup
	for i := range 4 {
		calls.Add(1)
		go func() {
			defer calls.Done()
			for range 500 {
				h, release, err := a.hostOf(ctx, g, "hash", "exec")
				if err != nil {
					t.Error(err)
					return
				}
				ch := h.(*closingHost)
				if ch.closed.Load() {
					t.Error("a call got a closed host")
				}
				for range 10 {
					runtime.Gosched()
					if ch.closed.Load() {
						t.Error("a host was closed under a call")
						break
					}
				}
				release()
				time.Sleep(time.Duration(rand.IntN(20*(i+1))) * time.Microsecond) // the calls leave gaps
			}
		}()
	}
	calls.Wait()
	cancel()
	wg.Wait()
	if built.Load() < 2 {
		t.Errorf("hosts built: %d; the idle ones were never closed", built.Load())
	}
	a.closeIdle(time.Now().Add(time.Hour))
	if n := len(a.hosts); n != 0 {
		t.Errorf("%d hosts left once every call ended", n)
	}
}

// TestIdleGraphLetGo: once the plugin host of a graph is closed as idle,
// and no call of it is in flight, its parse is let go (parsedGraphs); a
// later step of the graph fetches and parses it again, and runs. A graph
// a call holds, or another agent's host serves, or that a call took less
// than HostIdle ago, is kept.
func TestIdleGraphLetGo(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	k := NewKeys("idlegraph")
	g := warmGraph(t, fmt.Sprintf("idle-graph-%d", graphSeq.Add(1)), 3, "", "")
	hash := g.Hash()
	var parses atomic.Int32
	setHooks(t, nil, func(h string) {
		if h == hash {
			parses.Add(1)
		}
	})
	ctx := context.Background()
	if err := publishGraph(ctx, cli, k, g, hash); err != nil {
		t.Fatal(err)
	}
	rig := &warmRig{starts: map[string]int{}}
	newAgent := func(name string) *Agent {
		return NewAgent(AgentOptions{Client: cli, Keys: k, Name: name, Zone: "core", NewHost: rig.newHost, Logger: zap.NewNop()})
	}
	a, b := newAgent("core-1"), newAgent("core-2")
	later := func() time.Time { return time.Now().Add(time.Hour) } // past HostIdle
	t.Cleanup(func() { a.closeIdle(later()); b.closeIdle(later()) })
	run := func(ag *Agent, node string) {
		t.Helper()
		if res := runStep(t, ag, g, node); res.Error != "" || res.Status != step.Succeeded {
			t.Fatalf("%s on %s: %+v", node, ag.opts.Name, res)
		}
	}
	held := func(want bool, when string) {
		t.Helper()
		if got := parsedAlready(hash, g.File); got != want {
			t.Fatalf("%s: graph held %v, want %v", when, got, want)
		}
	}

	run(a, "n0")
	held(true, "a step ran")
	a.closeIdle(time.Now())
	held(true, "a call took it less than HostIdle ago")
	a.closeIdle(later())
	held(false, "its host closed as idle")
	run(a, "n1")
	held(true, "a later step ran")
	if n := parses.Load(); n != 2 {
		t.Fatalf("parsed %d times, want twice (once more after it was let go)", n)
	}

	_, let, err := a.graphs.hold(ctx, hash, g.File) // a call between its graph and its host
	if err != nil {
		t.Fatal(err)
	}
	a.closeIdle(later())
	held(true, "a call holds it")
	let()
	run(b, "n2") // another agent of the process: its host holds it
	a.closeIdle(later())
	held(true, "another agent's host serves it")
	b.closeIdle(later())
	held(false, "every host closed as idle")
	if n := parses.Load(); n != 2 {
		t.Errorf("parsed %d times, want twice", n)
	}
	rig.mu.Lock()
	defer rig.mu.Unlock()
	for i, h := range rig.hosts {
		if !h.closed {
			t.Errorf("host %d of %d left open", i+1, len(rig.hosts))
		}
	}
}
