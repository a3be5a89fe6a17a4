package cluster

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
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
