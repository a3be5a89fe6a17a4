package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/runsession"
)

// runFlags are the flags shared by run, resume and retry.
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
	c.Flags().BoolVar(&f.wait, "wait", false, "when only manual gates are left, wait for approvals instead of parking (exit 4)")
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	c.Flags().BoolVar(&f.json, "json", false, `print the outcome as JSON: {"run", "status", "counts", "total", "failed": [{"id", "error"}], "blocked", "waiting"} (with --dry-run: the plan)`)
	f.cluster.add(c)
}

func newRunCmd() *cobra.Command {
	var f runFlags
	var targets []string
	var dryRun, drill, fresh, converge bool
	c := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a graph: restore every node through its plugin, with durable state",
		Long: `Run a graph: restore every node through its plugin, dependencies first, most
critical first, keeping every transition in the state file so that the run
can be resumed after any interruption.

--drill runs the graph as a drill: an exercise on the real plan, which
hospitals must rehearse. The run is recorded as a drill, every step request
says so (plugins restore into the exercise environment; exec commands get
REPRISE_DRILL=1), and once the exercise environment has been cleaned up,
` + "`reprise cleanup RUN --by NAME --note TEXT`" + ` records who did what; a
cleaned-up drill cannot be resumed. With --dry-run, the plugins are told it
is a drill too.

--check converges on a half-rebuilt site (restored by hand, or by another
tool): every node's Check is asked before its Restore, and a node found
restored is recorded so (a "restored" journal entry, with Check's outputs,
after its Verify) and not restored again. A resume of that run keeps
converging.

A state file holding an unfinished run of a graph of the same name refuses a
new run (exit 2), naming that run: ` + "`reprise resume`" + ` continues it, --new starts
a fresh run anyway (its journal says which run was left unfinished).

Exit codes: 0 all nodes succeeded, 1 error, 2 usage, 3 finished with failed or
blocked nodes, 4 parked on manual gates, 130 interrupted (SIGINT, SIGTERM or
SIGHUP, a closed terminal: the first lets running steps finish, the second
cancels them).`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if f.parallelism < 1 {
				return usageError("--parallelism %d: want at least 1", f.parallelism)
			}
			g, err := graphs.Load(args[0])
			if err != nil {
				return err
			}
			if probs := validateScanners(c.Context(), g); len(probs) > 0 {
				for _, p := range probs {
					fmt.Fprintf(c.ErrOrStderr(), "%s:%s\n", args[0], p.String())
				}
				return withCode(exitError, nil)
			}
			opts := engine.Options{Parallelism: f.parallelism, FailFast: f.failFast, Targets: targets, Wait: f.wait, Drill: drill, Converge: converge}
			if drill {
				fmt.Fprintf(c.ErrOrStderr(), "DRILL: an exercise on the real plan of %s; plugins are told to restore into the exercise environment (REPRISE_DRILL=1)\n", g.Name)
			}
			if dryRun {
				return dryRunGraph(c.Context(), c.OutOrStdout(), g, opts, f.json)
			}
			co, err := dialCluster(c.Context(), f.cluster, *f.state)
			if err != nil {
				return err
			}
			if err := co.elect(c.Context(), c.ErrOrStderr(), g.Name, "run "+args[0]); err != nil {
				co.close()
				return err
			}
			s, err := openSession(*f.state, holder("run", args[0]))
			if err != nil {
				co.close()
				return err
			}
			s.co = co
			defer s.close()
			prev, err := unfinishedOf(s.st, g.Name, drill)
			if err != nil {
				return err
			}
			if prev != nil && f.cluster.standby {
				// A standby goes on with the run its leader left: resume
				// semantics, nothing completed runs again.
				return s.takeOver(c, f, opts, *prev)
			}
			if prev != nil && !fresh {
				return withCode(exitUsage, fmt.Errorf("run %s of %s is unfinished (%s, %s): `reprise resume %s` continues it; `reprise run --new %s` starts a fresh run anyway",
					prev.ID, prev.GraphName, prev.Status, progressOf(s.st, *prev), prev.ID, args[0]))
			}
			if prev != nil {
				opts.StartNote = fmt.Sprintf("started while run %s was unfinished (%s, %s)", prev.ID, prev.Status, progressOf(s.st, *prev))
				fmt.Fprintf(c.ErrOrStderr(), "note: %s; a new run starts (--new)\n", opts.StartNote)
			}
			if err := s.start(f, opts); err != nil {
				return err
			}
			res, err := s.do(func(ctx context.Context) (engine.Result, error) { return s.eng.Start(ctx, g) })
			err = s.finish(c.OutOrStdout(), res, err, f.json)
			if drill && res.RunID != "" {
				fmt.Fprintf(c.ErrOrStderr(), "drill %s: when the exercise is over and its environment cleaned up, record it: `reprise cleanup %s --by NAME --note TEXT`\n", res.RunID, res.RunID)
			}
			return err
		},
	}
	f.add(c)
	c.Flags().StringSliceVarP(&targets, "target", "t", nil, "run only this node and its ancestors (repeatable)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "validate and check every node, print what would run, write nothing")
	c.Flags().BoolVar(&converge, "check", false, "converge on a half-rebuilt site: ask every node's Check before its Restore; a node found restored is recorded so, with Check's outputs, and not restored")
	c.Flags().BoolVar(&fresh, "new", false, "start a new run even if a run of the same graph is unfinished (resume continues that one)")
	c.Flags().BoolVar(&drill, "drill", false, "run as a drill: an exercise on the real plan, plugins restore into the exercise environment (REPRISE_DRILL=1); then record its clean-up with reprise cleanup")
	return c
}

// unfinishedOf returns the newest unfinished run (one resume would
// continue: running or crashed, interrupted, parked or failed; not a drill
// cleaned up) of graph name, or nil. Drills and real runs are apart: a drill
// may rehearse while a real run waits, and the other way round.
func unfinishedOf(st state.Backend, name string, drill bool) (*state.Run, error) {
	runs, err := st.Runs()
	if err != nil {
		return nil, err
	}
	for i := range runs {
		r := runs[i]
		if r.GraphName == name && r.Options.Drill == drill && r.Unfinished() {
			return &r, nil // Runs is newest first
		}
	}
	return nil, nil
}

// progressOf says how far run got: "12/39 nodes done".
func progressOf(st state.Backend, run state.Run) string {
	recs, err := st.Nodes(run.ID)
	if err != nil {
		return fmt.Sprintf("%d nodes", run.Total)
	}
	done := 0
	for _, r := range recs {
		if r.State.Done() {
			done++
		}
	}
	return fmt.Sprintf("%d/%d nodes done", done, len(recs))
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
// needs it) and the control socket.
func (s *session) start(f runFlags, opts engine.Options) error {
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
	s.anchor = *f.anchor
	s.log = withLiveRun(s.log, live)
	opts.NewHost = newPluginHost
	if s.co != nil {
		opts.NewHost = s.co.newHost(func(ctx context.Context, run string, e *state.Entry) error {
			return s.st.Apply(ctx, state.Change{RunID: run, Entry: e})
		})
	}
	opts.Logger = s.log
	opts.Redactor = red
	opts.OnEvent, s.progressDone = stderrProgress(f.quiet)
	opts.NoProgress = f.quiet // the notifications read neither counts nor ETA
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
	s.co.serveCommands(s.eng, s.log)
	return nil
}

func (s *session) close() {
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
// first drains, the second cancels running steps).
func (s *session) do(fn func(ctx context.Context) (engine.Result, error)) (engine.Result, error) {
	if path := os.Getenv("REPRISE_CPUPROFILE"); path != "" { // for benchmarks: a CPU profile of the run
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	return s.rs.Do(s.co.context(), fn)
}

// finish prints the run's outcome on stdout and picks the exit code.
func (s *session) finish(w io.Writer, res engine.Result, err error, asJSON bool) error {
	if s.progressDone != nil {
		s.progressDone()
		s.progressDone = nil
	}
	if res.RunID != "" {
		s.writeAnchors(res.RunID)
	}
	if err != nil {
		if res.RunID != "" {
			return fmt.Errorf("run %s: %w", res.RunID, err)
		}
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printResult(w, res)
	}
	return exitForStatus(res.Status)
}

func exitForStatus(s state.RunStatus) error {
	switch s {
	case state.RunSucceeded:
		return nil
	case state.RunParked:
		return withCode(exitParked, nil)
	case state.RunInterrupted:
		return withCode(exitInterrupted, nil)
	default:
		return withCode(exitFailedNodes, nil)
	}
}

func printResult(w io.Writer, res engine.Result) {
	done := res.Counts[state.NodeSucceeded] + res.Counts[state.NodeSkipped]
	if res.Counts == nil && res.Status == state.RunSucceeded {
		done = res.Total // a resume of a run already done counts nothing
	}
	fmt.Fprintf(w, "run %s %s: %d/%d nodes done\n", res.RunID, res.Status, done, res.Total)
	for _, f := range res.Failed {
		fmt.Fprintf(w, "  failed   %s: %s\n", f.ID, f.Error)
	}
	if n := len(res.Blocked); n > 0 {
		fmt.Fprintf(w, "  blocked  %d node(s) behind the failures\n", n)
	}
	for _, id := range res.Waiting {
		fmt.Fprintf(w, "  waiting  %s: approve with `reprise approve %s %s --by NAME`\n", id, res.RunID, id)
	}
	switch res.Status {
	case state.RunFailed, state.RunInterrupted, state.RunParked:
		fmt.Fprintf(w, "resume with `reprise resume %s`\n", res.RunID)
	}
}

// dryRunGraph validates and checks every node, prints the plan and writes
// nothing.
func dryRunGraph(ctx context.Context, w io.Writer, g *graphs.Graph, opts engine.Options, asJSON bool) error {
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir})
	defer h.Close()
	items, err := engine.New(nil, h, opts).DryRun(ctx, g)
	if err != nil {
		return err
	}
	invalid := 0
	for _, it := range items {
		if it.Action == engine.ActionInvalid {
			invalid++
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"graph": g.Name, "drill": opts.Drill, "nodes": items, "invalid": invalid}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tPLUGIN\tCRITICALITY\tWOULD\tDETAIL")
		for _, it := range items {
			detail := it.Check
			if it.Error != "" {
				detail = it.Error
			}
			for _, p := range it.Problems {
				detail += p + "; "
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.ID, it.Plugin, it.Criticality, it.Action, detail)
		}
		tw.Flush()
		drill := ""
		if opts.Drill {
			drill = " (drill)"
		}
		fmt.Fprintf(w, "dry run of %s%s: %d nodes, %d invalid; nothing was written\n", g.Name, drill, len(items), invalid)
	}
	if invalid > 0 {
		return withCode(exitError, fmt.Errorf("dry run: %d node(s) have an invalid configuration", invalid))
	}
	return nil
}
