package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// wireEvent is a step event as it travels through etcd.
type wireEvent struct {
	Kind    step.EventKind `json:"k"`
	Level   string         `json:"l,omitempty"`
	Message string         `json:"m,omitempty"`
	Percent float64        `json:"p,omitempty"`
	Key     string         `json:"key,omitempty"`
	Value   string         `json:"v,omitempty"`
}

// event is w as a step event.
func (w wireEvent) event() step.Event {
	return step.Event{Kind: w.Kind, Level: w.Level, Message: w.Message, Percent: w.Percent, Key: w.Key, Value: w.Value}
}

// execute runs claimed (or offered) call cl and writes its result.
func (a *Agent) execute(hard context.Context, cl claimable) {
	key, it, rev := cl.key, cl.c.item, cl.rev
	ctx, cancel := context.WithCancel(hard)
	defer cancel()
	if it.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(it.Timeout))
		defer cancel()
	}
	r := &running{item: it, claimRev: rev, offer: cl.offer, cancel: cancel}
	a.mu.Lock()
	a.running[key] = r
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.running, key)
		marker := r.withdrawn // withdrawn after its result was written
		a.mu.Unlock()
		if marker != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.opts.Client.Delete(ctx, marker)
		}
	}()
	nlog := a.log.With(zap.String("run", it.Req.RunID), zap.String("node", it.Req.NodeID), zap.String("op", it.Op), zap.Int64("claim", rev))
	nlog.Info("step claimed", zap.Bool("check_first", it.CheckFirst), zap.String("lost_agent", it.LostAgent))
	fence := a.opts.Keys.Claim(it.Req.RunID, it.Req.NodeID)
	if cl.offer != "" {
		fence = cl.offer
	}
	ev := &eventBatch{a: a, it: it, rev: rev, fence: fence}
	stopFlush := ev.start(ctx)
	res := a.call(ctx, it, ev.add)
	stopFlush()
	trace(it.Req.NodeID, "ran")
	res.Call, res.ClaimRev, res.Agent, res.Op, res.Node = it.Call, rev, a.opts.Name, it.Op, it.Req.NodeID
	a.mu.Lock()
	superseded, withdrawn := r.superseded, r.withdrawn
	r.withdrawn = "" // deleted with the answer below
	a.mu.Unlock()
	if superseded {
		nlog.Info("step withdrawn by the coordinator while it ran: no result to write", zap.String("status", string(res.Status)))
		if cl.offer != "" {
			a.writeResult(hard, &pendingResult{it: it, offer: cl.offer, rev: rev, withdrawn: withdrawn, nlog: nlog})
		}
		return
	}
	if hard.Err() != nil && res.Status != step.Succeeded {
		// Cancelled by the operator (second signal): hand the step back.
		if cl.offer == "" {
			a.handBack(it, key, rev, nlog)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.writeResults(ctx, []*pendingResult{{it: it, offer: cl.offer, rev: rev, nlog: nlog,
			res: Result{Call: it.Call, ClaimRev: rev, Agent: a.opts.Name, Op: it.Op, Node: it.Req.NodeID, HandedBack: true, CheckFirst: true}}})
		return
	}
	evs := ev.rest()
	if eventsSize(evs) > maxEventBytes {
		ev.mu.Lock()
		ev.buf = evs
		ev.mu.Unlock()
		ev.flush(hard) // in keys of their own, before the result
		evs = nil
	}
	a.writeResult(hard, &pendingResult{it: it, res: res, evs: evs, offer: cl.offer, rev: rev, nlog: nlog})
}

// call runs the item's operation through the local plugin host.
func (a *Agent) call(ctx context.Context, it Item, onEvent func(step.Event)) Result {
	g, err := a.graphs.get(ctx, it.Graph, it.GraphFile)
	if err != nil {
		return Result{Error: err.Error(), Permanent: true}
	}
	n, ok := g.Node(it.Req.NodeID)
	if !ok {
		return Result{Error: fmt.Sprintf("node %q is not in graph %s (%s)", it.Req.NodeID, g.Name, it.Graph), Permanent: true}
	}
	h, err := a.hostOf(ctx, g, it.Graph, n.Plugin)
	if err != nil {
		return Result{Error: fmt.Sprintf("agent %q: %v", a.opts.Name, err), Permanent: true}
	}
	req := it.Req
	cfg, err := a.eng.ResolveConfig(n, g.Dir, req.Inputs, it.Op == opCheck)
	if err != nil {
		return Result{Status: step.Failed, Message: fmt.Sprintf("resolve config on agent %q: %v", a.opts.Name, err)}
	}
	req.Config = cfg
	var res Result
	switch it.Op {
	case opCheck:
		cr, err := h.Check(ctx, req)
		if err != nil {
			return errResult(err)
		}
		res = Result{Restored: cr.Restored, Message: cr.Message, Outputs: cr.Outputs}
	case opVerify:
		vr, err := h.Verify(ctx, req)
		if err != nil {
			return errResult(err)
		}
		res = Result{Status: vr.Status, Message: vr.Message, Outputs: vr.Outputs}
	default:
		if it.CheckFirst {
			if res, ok := a.checkFirst(ctx, h, n, g, it, req); ok {
				return a.guard(n, res)
			}
		}
		sr, err := h.Restore(ctx, req, onEvent)
		if err != nil {
			return errResult(err)
		}
		res = Result{Status: sr.Status, Message: sr.Message, Outputs: sr.Outputs}
	}
	return a.guard(n, res)
}

// checkFirst asks Check for a step left running by a lost agent (or handed
// back): restored, it is not restored again.
func (a *Agent) checkFirst(ctx context.Context, h step.Host, n *graphs.Node, g *graphs.Graph, it Item, req step.Request) (Result, bool) {
	cfg, err := a.eng.ResolveConfig(n, g.Dir, req.Inputs, true)
	if err != nil {
		return Result{}, false
	}
	creq := req
	creq.Config = cfg
	cr, err := h.Check(ctx, creq)
	why := "handed back by a stopping agent"
	if it.LostAgent != "" {
		why = fmt.Sprintf("left running by lost agent %s", it.LostAgent)
	}
	if err != nil || !cr.Restored {
		msg := cr.Message
		if err != nil {
			msg = err.Error()
		}
		a.log.Info(why+"; check: not restored: restoring again", zap.String("node", n.ID), zap.String("check", a.red.String(msg)))
		return Result{}, false
	}
	if cr.Message == "" {
		cr.Message = "restored"
	}
	return Result{Status: step.Succeeded, Checked: true, Outputs: cr.Outputs,
		Message: fmt.Sprintf("%s; check on agent %s: %s: not restored again", why, a.opts.Name, cr.Message)}, true
}

// guard keeps the agent's secrets out of etcd: text is redacted, and an
// output holding a secret fails the step, as in the coordinator.
func (a *Agent) guard(n *graphs.Node, res Result) Result {
	res.Message = a.red.String(res.Message)
	var bad []string
	for k, v := range res.Outputs {
		if a.red.Contains(v) {
			bad = append(bad, strconv.Quote(k))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		res.Outputs = nil
		res.Restored = false
		res.Status = step.Failed
		res.Message = fmt.Sprintf("node %q: output %s holds a secret (a ${secret:…} value): a secret must not travel through the state", n.ID, strings.Join(bad, ", "))
	}
	if size := resultSize(res); size > maxResultBytes {
		res.Outputs = nil
		res.Restored = false
		res.Status = step.Failed
		res.Message = fmt.Sprintf("node %q: its result is %d bytes, more than the %d an agent sends through etcd (limits.node_outputs above 1MiB holds only on one machine): outputs dropped; the message began: %s",
			n.ID, size, maxResultBytes, strings.ToValidUTF8(res.Message[:min(len(res.Message), 512)], ""))
	}
	return res
}

// maxResultBytes bounds a result an agent writes (its message and
// outputs): etcd refuses a request over 1.5 MiB by default. It is the
// graphs' default limits.node_outputs; a graph that allows more (up to
// 16 MiB) gets no more through agents (README, Scaling out).
const maxResultBytes = 1 << 20

// resultSize is the bytes of r's message and outputs.
func resultSize(r Result) int {
	n := len(r.Message) + len(r.Error)
	for k, v := range r.Outputs {
		n += len(k) + len(v)
	}
	return n
}

// maxBatchBytes bounds the results of one transaction (a last one may go
// over by one result and its events: still well under etcd's 1.5 MiB).
const maxBatchBytes = 512 << 10

// maxEventBytes bounds the events of one key (a flush, or a result's last
// events).
const maxEventBytes = 64 << 10

// eventsSize is the bytes of evs, about.
func eventsSize(evs []wireEvent) int {
	n := 0
	for _, e := range evs {
		n += len(e.Message) + len(e.Key) + len(e.Value) + 16
	}
	return n
}

func errResult(err error) Result {
	var p interface{ Permanent() bool }
	return Result{Error: err.Error(), Permanent: errors.As(err, &p) && p.Permanent()}
}

// hostOf returns the local plugin host of graph g (of hash hash, as the
// graph cache checked it), with plugin's binary checked (exists, pinned
// sha256 matches) on this machine.
func (a *Agent) hostOf(ctx context.Context, g *graphs.Graph, hash, plugin string) (step.Host, error) {
	hk := hash + "\x00" + g.File
	a.mu.Lock()
	lh := a.hosts[hk]
	if lh == nil {
		lh = &localHost{graph: g, pins: map[string]error{}}
		a.hosts[hk] = lh
	}
	a.mu.Unlock()
	lh.once.Do(func() { lh.h = a.opts.NewHost(g, a.log); lh.up.Store(true) })
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
	if err != nil {
		return nil, fmt.Errorf("check plugin on this machine: %w", err)
	}
	return lh.h, nil
}

// pendingResult is a result waiting for the result writer.
type pendingResult struct {
	it   Item
	res  Result
	evs  []wireEvent
	nlog *zap.Logger
	done chan struct{}
	// offer, rev: an offered call's batch and its revision ("": a call
	// this agent claimed itself).
	offer string
	rev   int64
	// withdrawn: the coordinator withdrew the offered call (this is the
	// key that said so): no result, the call only counts as answered.
	withdrawn string
}

// writeResult hands p to the result writer and waits until it is written
// (or refused, or given up).
func (a *Agent) writeResult(hard context.Context, p *pendingResult) {
	p.done = make(chan struct{})
	select {
	case a.results <- p:
		<-p.done
	case <-hard.Done():
	}
}

// queueResult hands p to the result writer without waiting.
func (a *Agent) queueResult(p *pendingResult) {
	if p.nlog == nil {
		p.nlog = a.log
	}
	select {
	case a.results <- p:
	case <-time.After(time.Minute):
		a.log.Warn("withdrawn step not counted in its offer batch: the batch goes with the agent's lease", zap.String("node", p.it.Req.NodeID))
	}
}

// resultLoop writes results in batches until stop is done.
func (a *Agent) resultLoop(hard, stop context.Context) {
	for {
		var first *pendingResult
		select {
		case first = <-a.results:
		case <-stop.Done():
			return
		}
		batch := []*pendingResult{first}
		size := resultSize(first.res) + eventsSize(first.evs)
		hold := time.NewTimer(resultHold)
	fill:
		for len(batch) < a.resultBatch() && size < maxBatchBytes {
			select {
			case p := <-a.results:
				batch = append(batch, p)
				size += resultSize(p.res) + eventsSize(p.evs)
				continue
			default:
			}
			if !a.batchesRunning(batch) {
				break
			}
			select {
			case p := <-a.results:
				batch = append(batch, p)
				size += resultSize(p.res) + eventsSize(p.evs)
			case <-hold.C:
				break fill
			case <-stop.Done():
				break fill
			}
		}
		hold.Stop()
		a.writeResults(hard, batch)
		for _, p := range batch {
			if p.done != nil {
				close(p.done)
			}
		}
	}
}

// resultHold bounds how long a result waits for the other calls of its
// offer batch that this agent runs.
const resultHold = 10 * time.Millisecond

// batchesRunning tells whether some call of the offer batches of batch's
// results is not answered and not in batch: the results of one offer batch
// then wait for each other a little (resultHold), and go in one key and
// reach the coordinator together.
func (a *Agent) batchesRunning(batch []*pendingResult) bool {
	in := map[string]int{}
	for _, p := range batch {
		if p.offer != "" {
			in[p.offer]++
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for offer, n := range in {
		if bs := a.batches[offer]; bs != nil && bs.left > n {
			return true
		}
	}
	return false
}

// resultGroup is the results of one offer batch in one transaction.
type resultGroup struct {
	offer   string
	run     string
	rev     int64
	results []Result
	logs    []*pendingResult
	markers []string // withdrawal keys to delete
}

// writeResults writes the results of batch, each only if its claim still
// holds (fencing): a call this agent claimed in a nested transaction of
// its own; the results of one offer batch together, in one key, with the
// batch deleted once each of its calls is answered. A result refused is
// written aside, for the coordinator to journal. It tries again while etcd
// is unreachable, until hard is done.
func (a *Agent) writeResults(hard context.Context, batch []*pendingResult) {
	k := a.opts.Keys
	var ops []clientv3.Op
	var own []*pendingResult
	var groups []*resultGroup
	byOffer := map[string]*resultGroup{}
	for _, p := range batch {
		if p.res.Call == "" {
			p.res.Call, p.res.ClaimRev, p.res.Agent, p.res.Op, p.res.Node = p.it.Call, p.rev, a.opts.Name, p.it.Op, p.it.Req.NodeID
		}
		if p.offer == "" {
			run, node := p.it.Req.RunID, p.it.Req.NodeID
			val, _ := json.Marshal(p.res)
			then := []clientv3.Op{clientv3.OpPut(k.Result(run, node), string(val))}
			if len(p.evs) > 0 {
				b, _ := json.Marshal(p.evs)
				then = append([]clientv3.Op{clientv3.OpPut(k.Event(run, node, p.res.ClaimRev, 99999999), string(b))}, then...)
			}
			ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k.Claim(run, node)), "=", p.res.ClaimRev)}, then, nil))
			own = append(own, p)
			continue
		}
		g := byOffer[p.offer]
		if g == nil {
			g = &resultGroup{offer: p.offer, run: p.it.Req.RunID, rev: p.rev}
			byOffer[p.offer] = g
			groups = append(groups, g)
		}
		if p.withdrawn != "" {
			g.markers = append(g.markers, p.withdrawn)
			continue
		}
		r := p.res
		r.Events = p.evs
		g.results = append(g.results, r)
		g.logs = append(g.logs, p)
	}
	a.mu.Lock()
	for _, g := range groups {
		var then []clientv3.Op
		if len(g.results) > 0 {
			val, _ := json.Marshal(g.results)
			id := fmt.Sprintf("%s.%x.%d", a.opts.Name, int64(a.lease), a.batchSeq.Add(1))
			then = append(then, clientv3.OpPut(k.Batch(g.run, id), string(val)))
		}
		for _, m := range g.markers {
			then = append(then, clientv3.OpDelete(m))
		}
		if bs := a.batches[g.offer]; bs != nil {
			bs.left -= len(g.results) + len(g.markers)
			if bs.left <= 0 {
				delete(a.batches, g.offer)
				a.settled[g.offer] = true
				then = append(then, clientv3.OpDelete(g.offer))
			}
		}
		ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(g.offer), "=", g.rev)}, then, nil))
	}
	a.mu.Unlock()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(hard, 10*time.Second)
		resp, err := a.opts.Client.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err == nil {
			var refused []clientv3.Op
			refuse := func(p *pendingResult, r Result) {
				p.nlog.Error("result refused: this agent's claim was taken over (its lease expired); writing it aside for the journal",
					zap.String("status", string(r.Status)))
				val, _ := json.Marshal(r)
				refused = append(refused, clientv3.OpPut(k.Refused(p.it.Req.RunID, r.Node, r.ClaimRev), string(val)))
			}
			for i, r := range resp.Responses {
				held := false
				if tr := r.GetResponseTxn(); tr != nil && tr.Succeeded {
					held = true
				}
				if i < len(own) {
					p := own[i]
					if !held {
						refuse(p, p.res)
						continue
					}
					trace(p.it.Req.NodeID, "written")
					p.nlog.Info("step done", zap.String("status", string(p.res.Status)), zap.Bool("restored", p.res.Restored), zap.String("error", p.res.Error))
					continue
				}
				g := groups[i-len(own)]
				for j, p := range g.logs {
					switch {
					case !held && p.res.HandedBack:
						p.nlog.Warn("step not handed back: its offer went with this agent's lease; the coordinator puts it back")
					case !held:
						refuse(p, g.results[j])
					case p.res.HandedBack:
						p.nlog.Info("step handed back (agent stopping)", zap.Bool("check_first", p.res.CheckFirst))
					default:
						trace(p.it.Req.NodeID, "written")
						p.nlog.Info("step done", zap.String("status", string(p.res.Status)), zap.Bool("restored", p.res.Restored), zap.String("error", p.res.Error))
					}
				}
			}
			if len(refused) > 0 {
				ctx, cancel := context.WithTimeout(hard, 10*time.Second)
				if _, err := a.opts.Client.Txn(ctx).Then(refused...).Commit(); err != nil {
					a.log.Error("write refused results aside", zap.Error(err))
				}
				cancel()
			}
			return
		}
		if hard.Err() != nil {
			a.log.Error("results not written: stopped while etcd was unreachable", zap.Int("results", len(batch)), zap.Error(err))
			return
		}
		if permanent(err) {
			a.log.Error("write results: refused by etcd, trying again (mend what it says, then restart this agent)", zap.Int("results", len(batch)), zap.Error(explainRefused(err)))
		} else {
			a.log.Warn("write results: etcd unreachable, trying again", zap.Error(err))
		}
		sleep(hard, wait)
	}
}

// handBack gives a cancelled step back: the claim goes and the item is put
// again with CheckFirst, in one transaction that holds only if the claim
// is still this agent's.
func (a *Agent) handBack(it Item, key string, rev int64, nlog *zap.Logger) {
	k := a.opts.Keys
	run, node := it.Req.RunID, it.Req.NodeID
	it.CheckFirst, it.ClaimedBy = true, ""
	val, _ := json.Marshal(it)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.opts.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k.Claim(run, node)), "=", rev)).
		Then(clientv3.OpDelete(k.Claim(run, node)), clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		nlog.Warn("hand the step back: its claim will expire with the agent's lease", zap.Error(err))
		return
	}
	nlog.Info("step handed back (agent stopping): the next agent asks Check first")
}

// eventBatch streams a step's events to etcd every 200 ms, fenced by the
// claim; what is left goes with the result.
type eventBatch struct {
	a     *Agent
	it    Item
	rev   int64
	fence string // the claim, or the offer batch, whose revision is rev
	ctx   context.Context
	mu    sync.Mutex
	buf   []wireEvent
	seq   int
	// done is closed to stop the flusher (nil until an event started it).
	done    chan struct{}
	stopped bool
	wg      sync.WaitGroup
}

func (b *eventBatch) add(ev step.Event) {
	w := wireEvent{Kind: ev.Kind, Level: ev.Level, Message: b.a.red.String(ev.Message), Percent: ev.Percent, Key: ev.Key, Value: ev.Value}
	if ev.Kind == step.EventOutput && b.a.red.Contains(ev.Value) {
		w.Value = "" // the result fails the step (guard); the secret stays here
	}
	b.mu.Lock()
	b.buf = append(b.buf, w)
	if b.done == nil && !b.stopped {
		// The first event starts the flusher: most short steps send none,
		// and cost no goroutine nor ticker.
		b.done = make(chan struct{})
		b.wg.Add(1)
		go b.flusher()
	}
	b.mu.Unlock()
}

// start arms the batch for a step that runs with ctx; stop ends its
// flusher, if an event started one.
func (b *eventBatch) start(ctx context.Context) (stop func()) {
	b.ctx = ctx
	return func() {
		b.mu.Lock()
		b.stopped = true
		done := b.done
		b.mu.Unlock()
		if done != nil {
			close(done)
			b.wg.Wait()
		}
	}
}

func (b *eventBatch) flusher() {
	defer b.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.flush(b.ctx)
		}
	}
}

func (b *eventBatch) flush(ctx context.Context) {
	b.mu.Lock()
	evs := b.buf
	b.buf = nil
	b.seq++
	seq := b.seq
	b.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	k := b.a.opts.Keys
	run, node := b.it.Req.RunID, b.it.Req.NodeID
	// In chunks of maxEventBytes: a noisy step's 200 ms may exceed what
	// etcd takes in one request.
	for len(evs) > 0 {
		n, size := 0, 0
		for n < len(evs) && (n == 0 || size+eventsSize(evs[n:n+1]) <= maxEventBytes) {
			size += eventsSize(evs[n : n+1])
			n++
		}
		val, _ := json.Marshal(evs[:n])
		evs = evs[n:]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b.a.opts.Client.Txn(cctx).
			If(clientv3.Compare(clientv3.CreateRevision(b.fence), "=", b.rev)).
			Then(clientv3.OpPut(k.Event(run, node, b.rev, seq), string(val))).Commit()
		cancel()
		b.mu.Lock()
		b.seq++
		seq = b.seq
		b.mu.Unlock()
	}
}

func (b *eventBatch) rest() []wireEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs := b.buf
	b.buf = nil
	return evs
}

// watch follows the work of every run: items of this agent's zone become
// candidates; a claim or item that goes away cancels the step it runs.
func (a *Agent) watch(ctx context.Context) {
	k := a.opts.Keys
	for ctx.Err() == nil {
		resp, err := a.opts.Client.Get(ctx, k.Runs(), clientv3.WithPrefix())
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("list work: etcd unreachable, trying again", zap.Error(err))
				sleep(ctx, time.Second)
			}
			continue
		}
		listed := map[string]bool{}
		for _, kv := range resp.Kvs {
			listed[string(kv.Key)] = true
			a.seeItem(kv, false)
		}
		a.forgetUnlisted(listed)
		a.idleLog()
		rev := resp.Header.Revision
		wch := a.opts.Client.Watch(clientv3.WithRequireLeader(ctx), k.Runs(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				a.seeItem(ev.Kv, ev.Type == mvccpb.DELETE)
				if ev.Type == mvccpb.DELETE {
					a.seeDelete(ev)
				}
			}
			a.notify()
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// idleLog says so when the agent's zone has no work at all.
func (a *Agent) idleLog() {
	a.mu.Lock()
	n := a.seen
	a.mu.Unlock()
	if n == 0 {
		a.log.Info("no work for this zone: idle, waiting for steps")
	}
}

func (a *Agent) seeItem(kv *mvccpb.KeyValue, deleted bool) {
	p, ok := a.opts.Keys.parse(string(kv.Key))
	if !ok {
		return
	}
	switch {
	case p.kind == "batch" || p.kind == "ev" || p.kind == "result" || p.kind == "refused":
		return
	case p.kind == "offer" || p.kind == "withdraw":
		if p.agent != a.opts.Name {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if p.kind == "offer" {
			if deleted {
				delete(a.settled, string(kv.Key))
			}
			a.seeOfferLocked(kv, deleted)
		} else if !deleted {
			a.seeWithdrawLocked(kv, p.id)
		}
		return
	}
	ik := a.opts.Keys.Item(p.run, p.node)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case p.kind == "claim" && !deleted:
		delete(a.cand, ik) // taken
	case p.kind == "item" && deleted:
		delete(a.cand, ik)
		if r := a.running[ik]; r != nil && r.offer == "" {
			r.superseded = true
			r.cancel() // the coordinator withdrew the call
		}
	case p.kind == "item":
		var it Item
		if json.Unmarshal(kv.Value, &it) != nil || (it.Zone != "" && it.Zone != a.opts.Zone) {
			return
		}
		a.seen++
		if r := a.running[ik]; r != nil && r.offer == "" && (r.item.Call != it.Call || it.ClaimedBy == "") {
			// Put back (this agent's claim was lost), or another call: its
			// result, if it writes one, is refused by fencing and journaled.
			r.cancel()
		}
		if it.ClaimedBy != "" {
			delete(a.cand, ik) // claimed (its claim may be gone with a lost agent: the coordinator puts it back)
			return
		}
		if _, ok := a.cand[ik]; !ok {
			a.queue = append(a.queue, ik)
			trace(p.node, "seen")
		}
		a.cand[ik] = candidate{item: it, rev: kv.ModRevision}
	}
}

func (a *Agent) seeDelete(ev *clientv3.Event) {
	p, ok := a.opts.Keys.parse(string(ev.Kv.Key))
	if !ok || p.kind != "claim" {
		return
	}
	ik := a.opts.Keys.Item(p.run, p.node)
	a.mu.Lock()
	defer a.mu.Unlock()
	// One claim at a time per item: the one deleted is this agent's if it
	// runs the item.
	if r := a.running[ik]; r != nil && r.offer == "" && ev.Kv.ModRevision > r.claimRev {
		r.cancel() // the claim is gone (lease lost): the result would be refused
	}
}
