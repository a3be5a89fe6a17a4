package engine

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// DefaultParallelism is the number of steps run at once when
// Options.Parallelism is zero.
const DefaultParallelism = 8

// Options tune an Engine. The zero value is usable.
type Options struct {
	// Parallelism caps the steps running at once (0: DefaultParallelism).
	// Each plugin's max_parallel caps its own steps further.
	Parallelism int
	// FailFast stops starting new nodes once one node has failed for good.
	FailFast bool
	// Targets restricts a new run to these nodes and their ancestors; the
	// other nodes are recorded as skipped.
	Targets []string
	// Wait keeps a run going when only manual gates or nodes held by a
	// zone's certification are left, waiting for approvals and
	// certifications (Approve, Certify: through the control socket),
	// instead of parking it. A failed or blocked node still ends it.
	Wait bool
	// Drill makes a new run a drill: an exercise on the same plan. Every
	// step request says so (plugins restore into the exercise environment;
	// exec commands get REPRISE_DRILL=1), and the run's clean-up is recorded
	// with RecordCleanup. A resumed run keeps what it was.
	Drill bool
	// Converge asks every node's Check before its Restore (reprise run
	// --check): a node found restored is recorded so, with Check's outputs,
	// and not restored again. Kept in the run's options, so a resume goes on
	// converging.
	Converge bool
	// StartNote, when set, is added to a new run's run-started journal
	// entry (and its data, as "note"): why this run started, such as
	// "started while run X was unfinished".
	StartNote string
	// By, when set, is who started the run (on an etcd state with
	// operators, the operator whose token allowed it), kept in the
	// run-started journal entry.
	By string
	// Logger receives the engine's log lines, each with the run id and the
	// node id (nil: no logging).
	Logger *zap.Logger
	// OnEvent, when set, receives every Event of a run, one at a time, in
	// order. It must not block for long: the scheduler waits for it.
	OnEvent func(Event)
	// NoProgress says OnEvent reads neither Counts nor ETA (`reprise run
	// -q`): events then go without them, which saves recomputing the ETA,
	// a quarter of a noop node's CPU.
	NoProgress bool
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
	// LookupEnv resolves `${env:NAME}` (nil: os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Redactor collects the resolved secret values (nil: a new one). Share
	// it with the loggers given to the plugin host (Redactor.WrapLogger).
	Redactor *Redactor
	// NewHost builds the plugin host when New is given none (nil host):
	// on the first step call a run needs, with the run's graph, so that a
	// resume with nothing left to do starts no plugin and a resumed run's
	// host serves the plugins of its own graph.
	NewHost NewHostFunc
}

// Engine runs graphs through a step.Host and keeps every transition in a
// state.Backend (the bbolt file or etcd). An Engine runs one run at a time (Start, Resume and Retry
// block until the run stops); Drain, the read methods and the operators'
// actions (Approve, Certify, RestorePointDecision, ResetNodes, Mark: handed
// to the running scheduler, see live.go) are safe to call from other
// goroutines while it runs.
type Engine struct {
	store state.Backend
	host  step.Host
	opts  Options
	log   *zap.Logger
	red   *Redactor

	mu    sync.Mutex
	live  *runner
	drain chan struct{}
	once  sync.Once

	evMu sync.Mutex

	hostMu   sync.Mutex // guards what follows: the host NewHost built
	built    step.Host
	buildErr error
	closed   bool
}

// New returns an Engine writing to store and running steps through host.
// The caller keeps ownership of both and closes them after the engine is
// done. host may be nil when opts.NewHost is set: the engine then builds
// its host when a run first needs one, and Close closes it.
func New(store state.Backend, host step.Host, opts Options) *Engine {
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Redactor == nil {
		opts.Redactor = NewRedactor()
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Engine{
		store: store,
		host:  host,
		opts:  opts,
		log:   opts.Redactor.WrapLogger(log),
		red:   opts.Redactor,
		drain: make(chan struct{}),
	}
}

// Result is how a run stopped.
type Result struct {
	RunID  string          `json:"run"`
	Status state.RunStatus `json:"status"`
	// Counts of nodes by state; Total is the number of nodes in the run.
	// Counts is nil when Resume found the run already succeeded (it reads
	// no node record then).
	Counts map[state.NodeState]int `json:"counts"`
	Total  int                     `json:"total"`
	// Failed lists the nodes that failed, with their last error; Blocked the
	// nodes blocked by them; Waiting the gates waiting for approval.
	Failed  []NodeError `json:"failed,omitempty"`
	Blocked []string    `json:"blocked,omitempty"`
	Waiting []string    `json:"waiting,omitempty"`
	// Uncertified lists the zones whose certification holds nodes back
	// (reprise certify), most trusted first.
	Uncertified []string `json:"uncertified,omitempty"`
}

// NodeError is a node and its last error.
type NodeError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// Drain asks the running run to start nothing new and stop once its running
// steps have finished (the first SIGINT). Cancelling the context given to
// Start or Resume cancels the running steps too (the second SIGINT). Drain is
// safe from any goroutine and idempotent.
func (e *Engine) Drain() { e.once.Do(func() { close(e.drain) }) }

// LiveRun returns the id of the run this engine is running ("" if none).
func (e *Engine) LiveRun() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live == nil {
		return ""
	}
	return e.live.run.ID
}

func (e *Engine) emit(ev Event) {
	if e.opts.OnEvent == nil {
		return
	}
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.opts.OnEvent(ev)
}

// Start creates a run of g and runs it until every node is done, the run
// parks on manual gates, it is drained or cancelled, or the state store
// fails (the only case with a non-nil error besides invalid options).
func (e *Engine) Start(ctx context.Context, g *graphs.Graph) (Result, error) {
	a := graphs.Analyze(g)
	include, err := targetSet(g, a, e.opts.Targets)
	if err != nil {
		return Result{}, err
	}
	if err := e.checkPins(ctx, g, include); err != nil {
		return Result{}, err
	}
	if err := step.KindsError(step.CheckKinds(ctx, e.hostOf(g), g, include)); err != nil {
		return Result{}, err
	}
	now := e.opts.Now()
	run := state.Run{
		ID:        state.NewRunID(now),
		GraphName: g.Name,
		GraphFile: absPath(g.File),
		GraphHash: g.Hash(),
		Status:    state.RunRunning,
		Options: state.RunOptions{
			Parallelism: e.opts.Parallelism,
			Targets:     e.opts.Targets,
			FailFast:    e.opts.FailFast,
			Drill:       e.opts.Drill,
			Converge:    e.opts.Converge,
		},
		Created: now,
		Updated: now,
		Total:   len(g.Nodes),
	}
	recs := make([]state.NodeRecord, len(g.Nodes))
	for i, n := range g.Nodes {
		recs[i] = state.NodeRecord{ID: n.ID, State: state.NodePending}
		if include != nil && !include[i] {
			recs[i].State = state.NodeSkipped
			recs[i].LastError = "not targeted"
		}
	}
	if err := e.store.CreateRun(ctx, run, g.Source, recs); err != nil {
		return Result{}, fmt.Errorf("create run of %q: %w", g.Name, err)
	}
	r, err := e.newRunner(ctx, g, a, run, recs, nil)
	if err != nil {
		return Result{}, err
	}
	defer e.release(r)
	what := "run"
	if e.opts.Drill {
		what = "drill"
	}
	msg := fmt.Sprintf("%s of %s (%d nodes) started", what, g.Name, len(g.Nodes))
	if e.opts.StartNote != "" {
		msg += "; " + e.opts.StartNote
	}
	entry := r.entry(state.EntryRunStarted, "", msg)
	entry.By = e.opts.By
	entry.Data = map[string]string{"graph": run.GraphFile, "hash": run.GraphHash, "parallelism": fmt.Sprint(e.opts.Parallelism)}
	if e.opts.StartNote != "" {
		entry.Data["note"] = e.opts.StartNote
	}
	if e.opts.Drill {
		entry.Data["drill"] = "true"
	}
	if len(e.opts.Targets) > 0 {
		entry.Data["targets"] = fmt.Sprint(e.opts.Targets)
	}
	r.addRunChange(entry)
	return r.loop()
}

func (e *Engine) acquire(r *runner) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live != nil {
		return fmt.Errorf("run %q: %w (run %q)", r.run.ID, ErrBusy, e.live.run.ID)
	}
	e.live = r
	return nil
}

func (e *Engine) release(r *runner) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live == r {
		e.live = nil
	}
}

// targetSet returns the nodes included by targets (the targets and their
// ancestors), or nil when there are no targets (every node).
func targetSet(g *graphs.Graph, a *graphs.Analysis, targets []string) ([]bool, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	starts := make([]int, 0, len(targets))
	for _, t := range targets {
		i, ok := g.Index(t)
		if !ok {
			return nil, fmt.Errorf("target %q: %w (not a node of graph %q)", t, ErrUnknownTarget, g.Name)
		}
		starts = append(starts, i)
	}
	return a.Ancestors(starts...), nil
}
