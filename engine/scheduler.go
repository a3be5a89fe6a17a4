package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// runner is one run in progress. Only its loop goroutine touches its fields
// (recs, queue, counts …); steps run in their own goroutines and report
// back on results. Every transition is persisted with its journal entry
// before anything that depends on it happens: a node is recorded running
// before its step starts, and succeeded before its dependents start.
type runner struct {
	e     *Engine
	ctx   context.Context // cancelled on the second interrupt or an abort
	stop  context.CancelFunc
	pctx  context.Context // for persisting: never cancelled
	g     *graphs.Graph
	a     *graphs.Analysis
	run   state.Run
	recs  []state.NodeRecord
	log   *zap.Logger
	queue *readyQueue

	waitDeps  []int                          // dependencies not yet done, by node
	tries     []int                          // attempts in this session, by node
	inflight  int                            // steps running
	perPlugin map[string]int                 // steps running by plugin
	held      map[string][]int               // ready nodes held back by their plugin's max_parallel
	only      []bool                         // nil, or the only nodes that may start (retry)
	used      map[string]map[string][]string // outputs dependents use (converge mode)
	usedOnce  sync.Once
	timers    map[int]*time.Timer
	counts    map[state.NodeState]int

	stopping    bool // start nothing new
	interrupted bool // stopping because of Drain or cancellation
	cancelled   bool // the context was cancelled: steps are being cancelled
	failedFast  bool

	changes []state.Change
	// A node is armed when its running record is written: arming holds
	// those in r.changes (not yet durable), armed those durable and waiting
	// for a free slot. reserved counts them by plugin (for max_parallel).
	arming   []int
	armed    []int
	reserved map[string]int
	// pre holds the nodes whose Restore call goes with the commit that
	// arms them (prestart.go).
	pre map[int]bool
	// One commit at a time runs in the background while the loop goes on:
	// committing holds the nodes it arms, commitDone its outcome.
	committing []int
	inCommit   bool
	commitDone chan error
	// The commit may wait for short steps in flight (hold, commit.go):
	// measured times, and the wait's end.
	commitStarted time.Time
	commitTime    time.Duration // recent commits' duration (moving average)
	stepTime      time.Duration // recent steps' duration (moving average)
	holding       bool
	holdUntil     time.Time
	holdTimer     *time.Timer

	results  chan result
	spare    chan launch // steps for a goroutine that has run one (batch.go)
	retryDue chan int
	ops      chan liveOp // operators' actions on this run (live.go)
	done     chan struct{}

	// Trust zones: each node's zone rank, which ranks are certified, and
	// the ready nodes held back until every more trusted zone is.
	zone      []int
	certified []bool
	zoneHeld  []int
	scan      scanners // compiled on first use, from a step goroutine

	// ETA bookkeeping.
	measured  time.Duration // sum of measured step durations
	measuredN int
	etaLast   time.Duration // the last ETA computed
	etaSince  int           // events since it was computed (0: never)
}

type launch struct {
	idx     int
	attempt int // the node's attempt number across the run's life
	req     step.Request
	node    *graphs.Node
	timeout time.Duration
}

type result struct {
	idx      int
	attempt  int
	status   step.Status
	message  string
	outputs  map[string]string
	canceled bool // the step was cancelled by an interrupt
	// permanent: a retry cannot mend the failure (the plugin's binary is
	// missing or changed, or it refused the handshake): no backoff, no retry
	permanent bool
	restored  bool // converge mode: found restored by Check, not restored
	started   time.Time
	ended     time.Time
}

func (e *Engine) newRunner(ctx context.Context, g *graphs.Graph, a *graphs.Analysis, run state.Run, recs []state.NodeRecord, only map[string]bool) (*runner, error) {
	p := e.opts.Parallelism
	sctx, stop := context.WithCancel(ctx)
	r := &runner{
		e:          e,
		ctx:        sctx,
		stop:       stop,
		pctx:       context.WithoutCancel(ctx),
		g:          g,
		a:          a,
		run:        run,
		recs:       recs,
		log:        e.log.With(zap.String("run", run.ID)),
		queue:      newReadyQueue(g, a),
		waitDeps:   make([]int, len(g.Nodes)),
		tries:      make([]int, len(g.Nodes)),
		perPlugin:  map[string]int{},
		held:       map[string][]int{},
		reserved:   map[string]int{},
		commitDone: make(chan error, 1),
		timers:     map[int]*time.Timer{},
		counts:     map[state.NodeState]int{},
		results:    make(chan result, p+1),
		spare:      make(chan launch),
		retryDue:   make(chan int, 16),
		ops:        make(chan liveOp),
		done:       make(chan struct{}),
	}
	if only != nil {
		r.only = make([]bool, len(g.Nodes))
		for i, n := range g.Nodes {
			r.only[i] = only[n.ID]
		}
	}
	r.initZones()
	if err := e.acquire(r); err != nil {
		stop()
		return nil, err
	}
	for i := range recs {
		r.counts[recs[i].State]++
	}
	for i := range recs {
		for _, d := range a.Deps[i] {
			if !recs[d].State.Done() {
				r.waitDeps[i]++
			}
		}
		if recs[i].State == state.NodePending && r.waitDeps[i] == 0 && r.may(i) {
			r.queue.push(i)
		}
	}
	return r, nil
}

// loop runs the scheduler until nothing more can happen.
func (r *runner) loop() (Result, error) {
	defer close(r.done)
	defer r.stop()
	r.e.emit(r.event(EventRunStarted, -1, fmt.Sprintf("run %s: %d nodes, %d to do", r.run.ID, len(r.recs), len(r.recs)-r.doneCount())))
	r.log.Info("run started", zap.String("graph", r.g.Name), zap.Int("nodes", len(r.recs)),
		zap.Int("todo", len(r.recs)-r.doneCount()), zap.Int("parallelism", r.e.opts.Parallelism))
	ctxDone := r.ctx.Done()
	drainCh := r.e.drain
	for {
		if r.stopping || r.failedFast {
			r.unarm()
		}
		r.launchArmed()
		r.startReady()
		r.flush()
		if r.idle() && !r.waitForGates() {
			break
		}
		select {
		case res := <-r.results:
			r.finish(res)
			r.drainResults()
		case i := <-r.retryDue:
			delete(r.timers, i)
			if !r.stopping && r.recs[i].State == state.NodePending {
				r.queue.push(i)
			}
		case err := <-r.commitDone:
			if err := r.committed(err); err != nil {
				return r.abort(err)
			}
		case op := <-r.ops:
			op.reply <- op.do(r)
		case <-r.holdDone():
			// the next flush commits
		case <-drainCh:
			drainCh = nil // handled: never fires again for this runner
			r.beginStop("interrupt: starting nothing new, waiting for running steps", false)
		case <-ctxDone:
			ctxDone = nil
			r.beginStop("second interrupt: cancelling running steps", true)
		}
	}
	return r.finishRun()
}

// lingerFor is how long the scheduler waits for more step results before
// committing: steps that start together (one commit) often end together,
// and one commit for all of them instead of one each is what lets short
// steps run at the speed of the disk's fsync divided by the parallelism.
// Long steps lose nothing: the wait ends at the first quiet lingerFor.
const lingerFor = 300 * time.Microsecond

// drainResults takes every result already waiting, and those that follow
// within lingerFor of each other, so that they share one commit with the
// transitions they allow; and, when the host says results are on their
// way to their steps (arriver), those too, arrivalWait at most.
func (r *runner) drainResults() {
	r.takeRunnable()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var until time.Time // the wait for results on their way (arriver) ends
	for r.inflight > 0 && !r.inCommit {
		select {
		case res := <-r.results:
			r.finish(res)
			continue
		default:
		}
		wait := lingerFor
		if r.arriving() {
			if until.IsZero() {
				until = time.Now().Add(arrivalWait)
			}
			wait = max(wait, time.Until(until))
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case res := <-r.results:
			r.finish(res)
		case <-timer.C:
			return
		}
	}
}

func (r *runner) idle() bool {
	if r.inflight > 0 || len(r.timers) > 0 || len(r.armed) > 0 || len(r.arming) > 0 || r.inCommit || len(r.changes) > 0 {
		return false
	}
	return r.queue.Len() == 0 || r.stopping || r.failedFast
}

// waitForGates reports whether an idle run should keep waiting: only with
// Options.Wait, when gates wait for approval or nodes for a zone's
// certification, no node failed and nothing asked it to stop.
func (r *runner) waitForGates() bool {
	return r.e.opts.Wait && !r.stopping && !r.failedFast &&
		(r.counts[state.NodeWaiting] > 0 || len(r.uncertified()) > 0) &&
		r.counts[state.NodeFailed]+r.counts[state.NodeBlocked] == 0
}

func (r *runner) beginStop(msg string, cancel bool) {
	r.stopping = true
	r.interrupted = true
	if cancel {
		r.cancelled = true
	}
	for i, t := range r.timers {
		t.Stop()
		delete(r.timers, i)
	}
	r.log.Warn(msg, zap.Int("running", r.inflight))
	ev := r.event(EventRunPausing, -1, msg)
	r.e.emit(ev)
}

// shortStep is the mean step time under which the scheduler arms nodes
// ahead of free slots; armAhead is at most how many, per slot, and armWait
// about the longest an armed node waits for its slot (steps of 1 ms get
// the 16 per slot that let a commit carry a hundred nodes' transitions;
// steps of 10 ms, 5).
const (
	shortStep = 20 * time.Millisecond
	armAhead  = 16
	armWait   = 50 * time.Millisecond
)

// ahead is how many nodes may be armed beyond the free slots. A node's
// running record must be durable before its step starts, so with one slot
// per node a slot would wait a whole commit for every step; when steps are
// short (milestones, small commands: measured, not guessed) the scheduler
// records the next nodes running while the current ones run, and a freed
// slot starts one of them at once. Long steps never arm ahead, so a node
// is never shown running long before it starts. A node armed but not
// started when the run stops goes back to pending; after a crash it is
// checked like any node left running.
func (r *runner) ahead() int {
	if r.measuredN < r.e.opts.Parallelism {
		return 0
	}
	mean := r.measured / time.Duration(r.measuredN)
	if mean >= shortStep {
		return 0
	}
	return int(min(armAhead, armWait/max(mean, time.Microsecond))) * r.e.opts.Parallelism
}

// startReady takes nodes off the ready queue while there is room and arms
// them: records them running (persisted by the next flush, before they start).
func (r *runner) startReady() {
	if r.stopping || r.failedFast {
		return
	}
	room := r.e.opts.Parallelism + r.ahead() - r.inflight - len(r.armed) - len(r.arming)
	for ; room > 0 && r.queue.Len() > 0; room-- {
		i := r.queue.pop()
		n := r.g.Nodes[i]
		if r.recs[i].State != state.NodePending || r.waitDeps[i] > 0 {
			// Changed by an operator since it was queued (marked done, or a
			// dependency retried): dropped; release queues it again.
			room++
			continue
		}
		if !r.zoneOpen(i) {
			r.holdForZone(i)
			room++
			continue
		}
		if max := r.g.Plugins[n.Plugin].MaxParallel; max > 0 && r.perPlugin[n.Plugin]+r.reserved[n.Plugin] >= max {
			r.held[n.Plugin] = append(r.held[n.Plugin], i)
			room++
			continue
		}
		r.arm(i)
	}
}

// arm records node i running, for the next flush.
func (r *runner) arm(i int) {
	n := r.g.Nodes[i]
	rec := &r.recs[i]
	now := r.e.opts.Now()
	r.tries[i]++
	rec.Attempts++
	r.setState(i, state.NodeRunning)
	rec.Started = now
	rec.Ended = time.Time{}
	rec.History = append(rec.History, state.Attempt{N: rec.Attempts, Started: now})
	ent := r.entry(state.EntryStarted, n.ID, fmt.Sprintf("attempt %d", rec.Attempts))
	ent.Attempt = rec.Attempts
	r.addNodeChange(i, ent)
	r.reserved[n.Plugin]++
	r.arming = append(r.arming, i)
}

// unarm puts the armed nodes that have not started back to pending (the
// run stops starting nodes).
func (r *runner) unarm() {
	r.launchPrestarted() // their call is out: they start
	for _, list := range [][]int{r.armed, r.arming} {
		for _, i := range list {
			n := r.g.Nodes[i]
			rec := &r.recs[i]
			r.reserved[n.Plugin]--
			r.tries[i]--
			rec.Attempts--
			if h := len(rec.History); h > 0 {
				rec.History = rec.History[:h-1]
			}
			rec.Started = time.Time{}
			r.setState(i, state.NodePending)
			r.addNodeChange(i, r.entry(state.EntryReset, n.ID, "not started: the run is stopping"))
		}
	}
	r.armed, r.arming = r.armed[:0], r.arming[:0]
}

// launchArmed starts armed nodes (their running record is durable) in the
// free slots, in the order they were armed.
func (r *runner) launchArmed() {
	r.launchPrestarted()
	if r.stopping || r.failedFast {
		return
	}
	k := min(len(r.armed), r.e.opts.Parallelism-r.inflight)
	if k <= 0 {
		return
	}
	r.announce(r.armed[:k])
	for _, i := range r.armed[:k] {
		r.launch(i)
	}
	r.armed = r.armed[:copy(r.armed, r.armed[k:])]
}

// launch starts the step of armed node i.
func (r *runner) launch(i int) {
	n := r.g.Nodes[i]
	rec := &r.recs[i]
	now := r.e.opts.Now()
	rec.Started = now // the step's real start (the record says when it was armed)
	if h := len(rec.History); h > 0 {
		rec.History[h-1].Started = now
	}
	r.reserved[n.Plugin]--
	r.inflight++
	r.perPlugin[n.Plugin]++
	l := launch{idx: i, attempt: rec.Attempts, node: n, req: r.request(i, rec.Attempts, step.ModeNormal), timeout: r.g.NodeTimeout(n)}
	r.log.Info("node started", zap.String("node", n.ID), zap.String("plugin", n.Plugin), zap.Int("attempt", l.attempt))
	ev := r.event(EventNodeStarted, i, "")
	ev.Attempt = l.attempt
	r.e.emit(ev)
	r.startStep(l)
}

// approve handles an approval for the live run: persisted before it
// returns, then the gate's dependents start.
func (r *runner) approve(node, by, comment string) error {
	i, ok := r.g.Index(node)
	if !ok {
		return fmt.Errorf("approve node %q of run %q: %w%s", node, r.run.ID, state.ErrNodeNotFound, didYouMean(node, r.nodeIDs()))
	}
	if r.recs[i].State != state.NodeWaiting {
		return fmt.Errorf("approve node %q (state %s): %w", node, r.recs[i].State, ErrNotWaiting)
	}
	if err := refusePointGate(r.run.ID, r.recs[i]); err != nil {
		return err
	}
	// Earlier approvals of this gate are in the journal: make what is
	// queued durable, then read them.
	if err := r.flushSync(); err != nil {
		return err
	}
	prior, err := GateApprovals(r.e.store.Journal, r.run.ID, node)
	if err != nil {
		return err
	}
	needed := neededApprovals(r.g, r.a, i)
	open, err := gateDecision(r.run.ID, node, by, prior, needed)
	if err != nil {
		return err
	}
	now := r.e.opts.Now()
	comment = r.e.red.String(comment)
	ent, all := approvalEntry(now, node, by, comment, prior, needed, open)
	rec := &r.recs[i]
	if !open {
		r.addNodeChange(i, ent)
		if err := r.flushSync(); err != nil {
			return err
		}
		msg := fmt.Sprintf("approval %d of %d by %s (approved so far: %s)", len(prior)+1, needed, by, all)
		r.log.Info("gate approval given", zap.String("node", node), zap.String("by", by), zap.String("comment", comment),
			zap.Int("given", len(prior)+1), zap.Int("needed", needed))
		ev := r.event(EventApprovalGiven, i, msg)
		ev.State = state.NodeWaiting
		r.e.emit(ev)
		return nil
	}
	rec.ApprovedBy, rec.ApprovalComment, rec.ApprovedAt = all, comment, now
	rec.Ended = now
	r.setState(i, state.NodeSucceeded)
	r.addNodeChange(i, ent)
	if err := r.flushSync(); err != nil {
		return err
	}
	r.log.Info("node approved", zap.String("node", node), zap.String("by", all), zap.String("comment", comment))
	ev := r.event(EventNodeApproved, i, fmt.Sprintf("approved by %s", all))
	ev.State = state.NodeSucceeded
	r.e.emit(ev)
	r.release(i)
	return nil
}
