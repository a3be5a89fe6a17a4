package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// countingCtx counts the contexts made from it that are still registered
// with it: context.WithCancel and WithTimeout register a child of a
// context that is not the package's own through AfterFunc, and stop it
// when the child is cancelled. Its own Done channel keeps the package from
// seeing the cancelCtx it wraps.
type countingCtx struct {
	context.Context
	done chan struct{}
	live atomic.Int64
}

func newCountingCtx(parent context.Context) *countingCtx {
	c := &countingCtx{Context: parent, done: make(chan struct{})}
	context.AfterFunc(parent, func() { close(c.done) })
	return c
}

func (c *countingCtx) Done() <-chan struct{} { return c.done }

func (c *countingCtx) AfterFunc(f func()) func() bool {
	c.live.Add(1)
	stop := context.AfterFunc(c.Context, f)
	var once atomic.Bool
	return func() bool {
		if once.CompareAndSwap(false, true) {
			c.live.Add(-1)
		}
		return stop()
	}
}

// TestAgentForgetsStepContexts: an agent that ran many steps keeps no
// context of theirs under the context it was given for its life (one left
// behind a step would pile up over a rebuild of months).
func TestAgentForgetsStepContexts(t *testing.T) {
	c := etcdtest.Start(t, 3)
	k := cluster.NewKeys("ctx")
	dir := t.TempDir()
	const n = 60
	g := mustGraph(t, dir, noopGraph(n))
	cli := c.Client(t)
	a := cluster.NewAgent(cluster.AgentOptions{Client: cli, Keys: k, Name: "core-1", Zone: "core", Slots: 8, TTL: 2 * time.Second,
		NewHost: localHost, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err := a.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	drain, dcancel := context.WithCancel(context.Background())
	base, hcancel := context.WithCancel(context.Background())
	hard := newCountingCtx(base)
	done := make(chan error, 1)
	go func() { done <- a.Run(drain, hard) }()
	defer func() {
		dcancel()
		<-done
		hcancel()
	}()
	co := startCoordinator(t, c, k, dir, g, true)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := co.eng.Start(ctx, g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v, %v", res, err)
	}
	if a.Claimed() != n {
		t.Fatalf("the agent ran %d steps, want %d", a.Claimed(), n)
	}
	// The agent's own loops hold a few for its life; a step holds none
	// once it ended.
	if live := hard.live.Load(); live > 10 {
		t.Errorf("%d contexts still registered under the agent's context after %d steps, want a handful", live, n)
	}
}
