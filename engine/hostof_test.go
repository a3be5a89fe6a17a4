package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// closingHost is a FakeHost that counts its Close calls.
type closingHost struct {
	enginetest.FakeHost
	mu     sync.Mutex
	closes int
}

func (h *closingHost) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closes++
	return nil
}

// TestNewHost: without a host, the engine builds one with Options.NewHost
// when a run first needs it, once, with the run's graph; a resume with
// nothing left to do builds none; Close closes what it built.
func TestNewHost(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: newhost
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
  - {id: b, kind: application, plugin: noop}
  - {id: c, kind: application, plugin: noop, depends_on: [a, b]}
`)
	st := enginetest.MustStore(t, dir)
	var mu sync.Mutex
	var built []*closingHost
	var graphsSeen []string
	newHost := func(g *graphs.Graph, log *zap.Logger) (step.Host, error) {
		mu.Lock()
		defer mu.Unlock()
		h := &closingHost{}
		built = append(built, h)
		graphsSeen = append(graphsSeen, g.Name)
		return h, nil
	}
	e := engine.New(st, nil, engine.Options{NewHost: newHost, Parallelism: 4})
	res, err := e.Start(context.Background(), g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %+v %v", res, err)
	}
	if len(built) != 1 || graphsSeen[0] != "newhost" || len(built[0].Restored()) != 3 {
		t.Fatalf("built %d hosts for graphs %v; want one for newhost that ran the 3 steps", len(built), graphsSeen)
	}
	if err := e.Close(); err != nil || built[0].closes != 1 {
		t.Errorf("Close: %v, host closed %d times; want once", err, built[0].closes)
	}

	e2 := engine.New(st, nil, engine.Options{NewHost: newHost})
	res, err = e2.Resume(context.Background(), res.RunID, nil)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("resume of a finished run: %+v %v", res, err)
	}
	if err := e2.Close(); err != nil || len(built) != 1 {
		t.Errorf("resume with nothing to do built %d more hosts (close: %v); want none", len(built)-1, err)
	}
}

// TestNewHostFails: a host that cannot be built fails the run's steps with
// the reason, as a crashed plugin would.
func TestNewHostFails(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: nohost
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
`)
	st := enginetest.MustStore(t, dir)
	e := engine.New(st, nil, engine.Options{NewHost: func(*graphs.Graph, *zap.Logger) (step.Host, error) {
		return nil, errors.New("plugins folder unreadable")
	}})
	defer e.Close()
	res, err := e.Start(context.Background(), g)
	if err == nil && res.Status == state.RunSucceeded {
		t.Fatalf("run without a host succeeded: %+v", res)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, f := range res.Failed {
		msg += f.Error
	}
	if !strings.Contains(msg, "start plugin host: plugins folder unreadable") {
		t.Errorf("run: %+v %v; want the host's error", res, err)
	}
}
