package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/runsession"
)

// stdio is where a command's logic writes: Out for what the command is
// asked for (a plan printed before a run, for instance), Err for progress,
// notes and warnings. The result itself is printed by the command.
type stdio struct {
	Out, Err io.Writer
}

// stdioOf is the command's own streams (stdout and stderr unless a test
// set others).
func stdioOf(c *cobra.Command) stdio { return stdio{Out: c.OutOrStdout(), Err: c.ErrOrStderr()} }

// runFlags are the flags shared by run, resume and retry, bound to a
// command; options reads them.
type runFlags struct {
	state       *string
	parallelism int
	failFast    bool
	wait        bool
	quiet       bool
	json        bool
	anchor      *string
	cluster     clusterFlags // agents and failover (coordinator.go)
}

func (f *runFlags) add(c *cobra.Command) {
	f.state = addStateFlag(c)
	f.anchor = addAnchorFlag(c, "also record the run's journal head here when the session ends: a file (appended to; e.g. on a WORM share) or an http(s) webhook (POST); resume and retry check the journal against it first (env REPRISE_ANCHOR)")
	c.Flags().IntVarP(&f.parallelism, "parallelism", "p", engine.DefaultParallelism, "steps run at once")
	c.Flags().BoolVar(&f.failFast, "fail-fast", false, "start no new node once one has failed")
	c.Flags().BoolVar(&f.wait, "wait", false, "when only manual gates or zones to certify are left, wait for approvals and certifications (from another terminal or the dashboard) instead of parking (exit 4)")
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	c.Flags().BoolVar(&f.json, "json", false, `print the outcome as JSON: {"run", "status", "counts", "total", "failed": [{"id", "error"}], "blocked", "waiting"} (with --dry-run: the plan)`)
	f.cluster.add(c)
}

// options reads the flags of c bound by add.
func (f *runFlags) options(c *cobra.Command) sessionOptions {
	return sessionOptions{
		StatePath: *f.state, Anchor: *f.anchor,
		Parallelism: f.parallelism, ParallelismSet: c.Flags().Changed("parallelism"),
		FailFast: f.failFast, FailFastSet: c.Flags().Changed("fail-fast"),
		Wait: f.wait, Quiet: f.quiet, JSON: f.json, Cluster: f.cluster,
	}
}

// sessionOptions are the options of a run session (run, resume, retry).
// The zero value is not usable: StatePath and Parallelism must be set.
type sessionOptions struct {
	// StatePath is the state file (--state).
	StatePath string
	// Anchor is where the journal head goes when the session ends, and what
	// resume and retry check the journal against first (--anchor; "": the
	// JSON log only).
	Anchor string
	// Parallelism is how many steps run at once (at least 1).
	Parallelism int
	// ParallelismSet says --parallelism was given: without it, resume and
	// retry keep the run's own.
	ParallelismSet bool
	// FailFast starts no new node once one has failed.
	FailFast bool
	// FailFastSet says --fail-fast was given (as ParallelismSet).
	FailFastSet bool
	// Wait waits for approvals instead of parking on manual gates.
	Wait bool
	// Quiet shows no progress on stdio.Err.
	Quiet bool
	// JSON asks for the outcome as JSON (the command prints it).
	JSON bool
	// Cluster is where zoned steps go to agents and the coordinators'
	// election (--cluster, --standby, --agents-only, --ttl; coordinator.go).
	Cluster clusterFlags
}

// check returns a usage error for options no run accepts.
func (o sessionOptions) check() error {
	if o.Parallelism < 1 {
		return usageError("--parallelism %d: want at least 1", o.Parallelism)
	}
	return nil
}

// engineOptions are the engine's options these flags give.
func (o sessionOptions) engineOptions() engine.Options {
	return engine.Options{Parallelism: o.Parallelism, FailFast: o.FailFast, Wait: o.Wait}
}

// session is a state file opened for a run: store, logs, progress display
// and notifications around the run session (engine, control socket,
// signals: internal/runsession).
type session struct {
	path     string
	st       state.Backend
	log      *zap.Logger
	closeLog func()
	rs       *runsession.Session
	eng      *engine.Engine // rs.Engine
	notify   *notifyHook    // the graph's notify targets
	// progressDone flushes the progress display (before the result is printed).
	progressDone func()
	// anchor is where the journal head goes at the end (--anchor).
	anchor string
	// co is the cluster side (--cluster or an etcd state): agents,
	// leadership; nil without one.
	co *coordinator
	// auth is who the session acts for (run, resume, retry): watched
	// while it leads the run (watchAuthority); unwatch ends that watch.
	auth    *sessionAuth
	unwatch context.CancelFunc
}

// openSession opens the state file for writing and its log file.
func openSession(path, who string) (*session, error) {
	st, err := openStore(path, who)
	if err != nil {
		return nil, err
	}
	s := &session{path: path, st: st}
	s.log, s.closeLog, err = openLog(path)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// newPluginHost is the engine's NewHost: the plugin host of the run's graph.
func newPluginHost(g *graphs.Graph, log *zap.Logger) (step.Host, error) {
	return host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, Logger: log, Limits: g.Limits}), nil
}

// start builds the engine (which builds its plugin host when a step first
// needs it) and the control socket; progress goes to errw unless quiet.
func (s *session) start(o sessionOptions, opts engine.Options, errw io.Writer) error {
	if os.Getenv("GOGC") == "" {
		// A run keeps little memory alive and allocates per node: collect
		// less often (GOGC in the environment still decides).
		debug.SetGCPercent(400)
	}
	red := engine.NewRedactor()
	var eng *engine.Engine
	var mu sync.Mutex
	live := func() string { // the log's run field, once the engine exists
		mu.Lock()
		defer mu.Unlock()
		if eng == nil {
			return ""
		}
		return eng.LiveRun()
	}
	s.anchor = o.Anchor
	s.log = withLiveRun(s.log, live)
	opts.NewHost = newPluginHost
	if s.co != nil {
		opts.NewHost = s.co.newHost(func(ctx context.Context, run string, e *state.Entry) error {
			return s.st.Apply(ctx, state.Change{RunID: run, Entry: e})
		})
	}
	opts.Logger = s.log
	opts.Redactor = red
	opts.OnEvent, s.progressDone = progressTo(errw, o.Quiet)
	opts.NoProgress = o.Quiet // the notifications read neither counts nor ETA
	s.notify = watchNotify(s.st, opts.OnEvent)
	opts.OnEvent = s.notify.onEvent
	rs, err := runsession.Start(s.st, opts, s.log)
	if err != nil {
		return err
	}
	mu.Lock()
	eng = rs.Engine
	mu.Unlock()
	s.rs, s.eng = rs, rs.Engine
	s.co.serveCommands(s.eng, s.st, s.log)
	s.watchAuthority(errw)
	return nil
}

func (s *session) close() {
	if s.unwatch != nil {
		s.unwatch()
	}
	if s.progressDone != nil {
		s.progressDone()
	}
	if s.rs != nil {
		s.rs.Close()
	}
	s.notify.close()
	if s.closeLog != nil {
		s.closeLog()
	}
	s.st.Close()
	s.co.close()
}

// do runs fn under the operator's signals (runsession.Session.Do: the
// first drains, the second cancels running steps), and in a cluster until
// the lead is lost.
func (s *session) do(ctx context.Context, fn func(ctx context.Context) (engine.Result, error)) (engine.Result, error) {
	if path := os.Getenv("REPRISE_CPUPROFILE"); path != "" { // for benchmarks: a CPU profile of the run
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	return s.rs.Do(s.co.context(ctx), fn)
}

// end flushes the progress display, anchors the journal head of the run
// the session ran, and names the run in err.
func (s *session) end(res engine.Result, err error) error {
	if s.unwatch != nil {
		s.unwatch() // the run is over: its operator's authority no longer matters
	}
	if s.progressDone != nil {
		s.progressDone()
		s.progressDone = nil
	}
	if res.RunID != "" {
		s.writeAnchors(res.RunID)
	}
	if err != nil && res.RunID != "" {
		return fmt.Errorf("run %s: %w", res.RunID, err)
	}
	return err
}
