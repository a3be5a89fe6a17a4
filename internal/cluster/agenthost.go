package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// An agent's local plugin hosts: one per graph (its hash and the file name
// it is parsed under), built on the graph's first call (or from its
// warmSpec, warm.go) and kept while the graph has calls. Over a rebuild of
// months every edit of the graph is a new hash: a host kept for the
// agent's whole life would leave its plugin processes running for ever. A
// host with no call in flight and none for HostIdle is closed (its plugin
// processes end); the graph's next call builds a new one.
//
// A call takes its host and counts itself on it under a.mu, and the host
// is taken out of a.hosts, under a.mu too, only while nothing counts on
// it, before it is closed: a call either holds the host (and it is not
// closed under it) or finds no host and builds a fresh one. Never a
// closed one.

// An agent that stops ends every plugin process it started: Run's final
// close of the hosts comes after every warm-up it started has returned
// (stopWarmups), and no host is built once it stops (hostOf, warmEarly).
// A plugin process does not die with the agent's process by itself: it
// leads a session of its own (engine/host), with no parent-death signal,
// and go-plugin sets none. Plugins built on plugins/sdk (the built-ins
// among them) and on the Python helper watch their parent and exit within
// a second or so once it is gone (their calls given at most 10 s); a
// vendor plugin built on go-plugin alone does not. And a process that
// embeds an agent and goes on after its Run (tests, a tool) is still their
// parent: a plugin a late warm-up started would run as long as it.

// errAgentStopped: the agent's Run has ended (or is ending): no host is
// built.
var errAgentStopped = errors.New("agent stopped: no plugin started")

// goWarm runs warm (of the graph of hash hash, until ctx ends) in the
// background as a warm-up of this Run, unless the Run is stopping; it
// reports whether it did.
func (a *Agent) goWarm(ctx context.Context, hash string, warm func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return false
	}
	a.warmups.Add(1) // under a.mu, before stopWarmups's Wait
	go func() {
		defer a.warmups.Done()
		if f := testWarmUp.Load(); f != nil {
			defer (*f)(ctx, hash)()
		}
		warm()
	}()
	return true
}

// stopWarmups starts no more warm-ups and waits for those running (their
// context is cancelled: Run stopped it).
func (a *Agent) stopWarmups() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.warmups.Wait()
}

// DefaultHostIdle is how long an agent keeps the plugin host of a graph
// with no call before closing it (AgentOptions.HostIdle).
const DefaultHostIdle = 10 * time.Minute

type localHost struct {
	once  sync.Once
	up    atomic.Bool // h is set
	h     step.Host
	mu    sync.Mutex
	pins  map[string]error // plugin → CheckPins's verdict
	graph *graphs.Graph
	// early is the warmSpec the host was built from, until its graph is
	// parsed and verified (a.mu; warm.go); warmed then says that the spec
	// listed the graph's plugins right; gone that the host was closed
	// (it differed from the graph's, sat idle, or the agent stopped).
	early  *warmSpec
	warmed bool
	gone   atomic.Bool
	// users counts the calls (and warm-ups) that hold the host; idle is
	// when the last one let it go (a.mu).
	users int
	idle  time.Time
	// unhold lets go of the parsed graph the host holds (parsedGraphs),
	// once it is closed.
	unhold atomic.Pointer[func()]
}

// newLocalHostLocked makes the host of graph g (of hash hash) under key
// hk, held by one user; built from a parsed graph (early is nil), it
// holds it. a.mu is held.
func (a *Agent) newLocalHostLocked(hk, hash string, g *graphs.Graph, early *warmSpec) *localHost {
	lh := &localHost{graph: g, pins: map[string]error{}, early: early, users: 1, idle: time.Now()}
	if early == nil {
		lh.holdGraph(hash, g)
	}
	a.hosts[hk] = lh
	return lh
}

// holdGraph makes lh hold g, the graph of hash hash, parsed, until it is
// closed.
func (lh *localHost) holdGraph(hash string, g *graphs.Graph) {
	if let := holdParsed(hash, g.File, g); let != nil {
		if old := lh.unhold.Swap(&let); old != nil {
			(*old)()
		}
	}
}

// release lets go of lh, taken by hostOf or warmEarly.
func (a *Agent) release(lh *localHost) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lh.users--
	if lh.users == 0 {
		lh.idle = time.Now()
	}
}

// close ends lh's plugin processes, once it is out of a.hosts. A host
// being built is built first; none is built after.
func (lh *localHost) close() {
	lh.gone.Store(true)
	lh.once.Do(func() {})
	if lh.up.Load() {
		lh.h.Close()
	}
	if let := lh.unhold.Swap(nil); let != nil {
		(*let)()
	}
}

// hostOf returns the local plugin host of graph g (of hash hash, as the
// graph cache checked it), with plugin's binary checked (exists, pinned
// sha256 matches) on this machine, and the function that lets it go: the
// host is not closed before.
func (a *Agent) hostOf(ctx context.Context, g *graphs.Graph, hash, plugin string) (step.Host, func(), error) {
	hk := hash + "\x00" + g.File
	for {
		a.mu.Lock()
		lh := a.hosts[hk]
		if lh == nil && a.stopped {
			a.mu.Unlock()
			return nil, nil, errAgentStopped
		}
		if lh == nil {
			lh = a.newLocalHostLocked(hk, hash, g, nil)
		} else {
			lh.users++
		}
		a.mu.Unlock()
		lh.once.Do(func() {
			if !lh.gone.Load() {
				lh.h = a.opts.NewHost(g, a.log)
				lh.up.Store(true)
			}
		})
		if !lh.up.Load() || lh.gone.Load() {
			// Retired while this call took it (warm.go): out of a.hosts
			// already, the next turn finds another or builds one.
			a.release(lh)
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err := lh.checkPin(ctx, plugin); err != nil {
			a.release(lh)
			return nil, nil, fmt.Errorf("check plugin on this machine: %w", err)
		}
		return lh.h, func() { a.release(lh) }, nil
	}
}

// checkPin checks plugin's binary on this machine through the host's
// CheckPins, once: the verdict is kept for the next steps (unless ctx
// ended first).
func (lh *localHost) checkPin(ctx context.Context, plugin string) error {
	lh.mu.Lock()
	defer lh.mu.Unlock()
	err, ok := lh.pins[plugin]
	if !ok {
		if pc, can := lh.h.(interface {
			CheckPins(context.Context, []string) error
		}); can {
			err = pc.CheckPins(ctx, []string{plugin})
		}
		if ctx.Err() == nil {
			lh.pins[plugin] = err
		}
	}
	return err
}

// closeIdleHosts closes, until ctx ends, the hosts that sat HostIdle with
// no call.
func (a *Agent) closeIdleHosts(ctx context.Context) {
	every := min(max(a.opts.HostIdle/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.closeIdle(time.Now())
	}
}

// closeIdle closes the hosts idle since before now-HostIdle, then lets go
// of the parsed graphs that nothing holds any more, and that no call took
// since then (parsedGraphs).
func (a *Agent) closeIdle(now time.Time) {
	type idleHost struct {
		key string
		lh  *localHost
	}
	var idle []idleHost
	a.mu.Lock()
	for hk, lh := range a.hosts {
		if lh.users == 0 && now.Sub(lh.idle) >= a.opts.HostIdle {
			delete(a.hosts, hk)
			idle = append(idle, idleHost{hk, lh})
		}
	}
	a.mu.Unlock()
	for _, ih := range idle {
		ih.lh.close()
		hash, file, _ := strings.Cut(ih.key, "\x00")
		a.log.Info("plugin host of a graph closed: no call for a while (the graph's next step starts its plugins again)",
			zap.String("graph", hash), zap.String("file", file), zap.Duration("idle", a.opts.HostIdle))
	}
	for _, hash := range forgetIdleGraphs(now, a.opts.HostIdle) {
		a.log.Info("parsed graph let go: no call for a while (the graph's next step fetches it again)",
			zap.String("graph", hash), zap.Duration("idle", a.opts.HostIdle))
	}
}
