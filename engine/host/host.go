package host

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// Options configure a Host. The zero value serves the built-in plugins
// only, through the running executable.
type Options struct {
	// Plugins are the vendor plugins the graph declares, by name.
	Plugins map[string]graphs.PluginRef
	// GraphDir is the folder relative plugin paths resolve from ("": the
	// current directory).
	GraphDir string
	// Logger receives the plugins' stderr and hclog lines with plugin= and
	// node= fields; nil: zap.NewNop().
	Logger *zap.Logger
	// StartTimeout bounds a plugin's start, handshake and session opening,
	// a hard deadline, for plugins whose declaration sets no start_timeout;
	// zero: 10s.
	StartTimeout time.Duration
	// BuiltinCommand makes the command that serves built-in plugin name;
	// nil: the running executable with arguments "plugin-serve NAME". Tests
	// use hosttest.BuiltinCommand.
	BuiltinCommand func(name string) *exec.Cmd
	// Limits bound each node's outputs (the graph's limits; zero fields:
	// the defaults). A step past them fails, with nothing of its outputs.
	Limits graphs.Limits
	// NoSessions calls every step with an RPC of its own even when the
	// plugin offers a Session stream (benchmarks compare both ways).
	NoSessions bool
}

// DefaultStartTimeout is the start timeout used when Options.StartTimeout is zero.
const DefaultStartTimeout = 10 * time.Second

// Host runs restore steps in plugin processes: one process per plugin name,
// started on first use and reused, with concurrent calls. It implements
// step.Host and is safe for concurrent use. Close ends every process.
type Host struct {
	opts Options
	log  *zap.Logger

	mu     sync.Mutex
	procs  map[string]*proc
	pins   map[string]*pinnedCopy // verified copies of pinned binaries
	closed bool
	reaper sync.WaitGroup // kills of crashed processes in progress
}

var _ step.Host = (*Host)(nil)

// New returns a Host; no process starts until the first call.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	return &Host{opts: opts, log: opts.Logger, procs: map[string]*proc{}, pins: map[string]*pinnedCopy{}}
}

// get returns the running process of plugin name, starting it when there is
// none or when the last one died. Concurrent callers share one start.
func (h *Host) get(ctx context.Context, name string) (*proc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // a caller that gave up starts no process
	}
	for attempt := 0; ; attempt++ {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, &PluginError{Plugin: name, Err: ErrClosed}
		}
		p := h.procs[name]
		if p == nil {
			p = newProc(name)
			h.procs[name] = p
			go h.start(p)
		}
		h.mu.Unlock()
		select {
		case <-p.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if p.err != nil {
			h.forget(p) // the next call tries again
			return nil, p.err
		}
		if !p.client.Exited() || attempt > 0 {
			return p, nil
		}
		h.retire(p) // died between calls: start a new one
	}
}

// forget removes p from the running set if it is still there.
func (h *Host) forget(p *proc) {
	h.mu.Lock()
	if h.procs[p.name] == p {
		delete(h.procs, p.name)
	}
	h.mu.Unlock()
}

// retire forgets a dead or broken process and ends its tree in the
// background; Close waits for it.
func (h *Host) retire(p *proc) {
	h.forget(p)
	h.reaper.Add(1)
	go func() {
		defer h.reaper.Done()
		p.kill(false)
	}()
}

// Close ends every plugin process and everything they started: a graceful
// shutdown first, then SIGKILL to each process tree. Calls made after Close
// fail with ErrClosed.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.procs = map[string]*proc{}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		close(p.abort) // a start in progress ends now
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-p.ready
			if p.err == nil && p.sess != nil {
				p.sess.logStats(h.log, p)
			}
			p.kill(true)
		}()
	}
	wg.Wait()
	h.reaper.Wait()
	h.removePins()
	return nil
}

// resolvePath makes a plugin path absolute, relative to dir.
func resolvePath(dir, path string) string {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// ResolvePath returns the absolute path of a declared plugin's binary,
// relative paths resolving from graphDir.
func ResolvePath(graphDir string, ref graphs.PluginRef) string {
	return resolvePath(graphDir, ref.Path)
}

func isBuiltin(name string) bool { return graphs.IsBuiltin(name) }

func builtinNames() []string { return graphs.BuiltinPlugins }

// Start starts the named plugins now, concurrently, instead of on their
// first call (a run can start every plugin its graph uses while it
// prepares). Plugins already running are left as they are. It returns the
// start errors joined; a plugin that failed is tried again on its next call.
func (h *Host) Start(ctx context.Context, names ...string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.get(ctx, name); err != nil {
				errs[i] = fmt.Errorf("start plugin %q: %w", name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Expect tells the host that n calls to plugin name are about to be made
// together (the engine starts them in one go): the plugin's session sends
// their frames in one message, which costs both processes a fraction of n
// messages' CPU. It waits for them at most a fraction of a millisecond; a
// plugin not running yet, or without sessions, ignores it.
func (h *Host) Expect(name string, n int) {
	h.mu.Lock()
	p := h.procs[name]
	h.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.ready:
	default:
		return
	}
	if p.err == nil && p.sess != nil {
		p.sess.announce(n)
	}
}

// Ready starts plugin name if it is not running and waits until it is
// (bounded by its start timeout) or ctx ends. The engine calls it before a
// node's timeout starts, so that a plugin's start-up never eats it.
func (h *Host) Ready(ctx context.Context, name string) error {
	if _, err := h.get(ctx, name); err != nil {
		return fmt.Errorf("start plugin %q: %w", name, err)
	}
	return nil
}
