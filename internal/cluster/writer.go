package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/internal/etcdconn"
)

// DefaultMaxTxnOps is etcd's default --max-txn-ops: the operations a level
// of a transaction may hold.
const DefaultMaxTxnOps = 128

// opsBudget is what a level of a transaction is filled to, for members run
// with --max-txn-ops limit (0: etcd's default): 100 of the default 128,
// room left for the few nested transactions a batch adds.
func opsBudget(limit int) int {
	if limit <= 0 {
		limit = DefaultMaxTxnOps
	}
	return max(1, limit*25/32)
}

// maxTxnBytes bounds the values of one transaction, well under etcd's
// request size limit (1.5 MiB by default).
const maxTxnBytes = 1 << 20

// maxInFlight is how many of the dispatcher's transactions are in flight
// at once. One: the writes queued while a transaction commits all go in the
// next one (group commit). Measured on 2 shared cores with the three etcd
// members on the same machine (BenchmarkDispatch10k, 500 nodes), four in
// flight made twice the Raft proposals per node (0.64–0.72 against
// 0.33–0.38, agents' pipelines alike) and the run slower: the members'
// cost is per proposal, and a run of many short steps is bound by it.
const maxInFlight = 1

// writer groups the dispatcher's unconditional writes (items put, work
// consumed) into few transactions, several in flight at once. Writes of one
// node keep their order: a node's write waits while an earlier one of the
// same node is queued before it or in flight, and one transaction holds at
// most one write per node.
type writer struct {
	cli    *clientv3.Client
	log    *zap.Logger
	ctx    context.Context // ends after the last write
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []*wreq
	busy     map[string]bool // nodes with a write in flight
	inFlight int
	closing  bool
	wake     chan struct{}
	wg       sync.WaitGroup // the loop and the transactions in flight
	// group builds the offer batches of the offers of one transaction
	// (Dispatcher.groupOffers).
	group func([]*wreq) []offerGroup
	limit int // the members' --max-txn-ops (0: etcd's default)
	// marks is this writer's prefix of markers (Keys.Writes, a random id):
	// a transaction that is not idempotent writes a marker of its own, so
	// that sent again after its answer was lost it is not applied twice
	// (commit). seq numbers them.
	marks string
	seq   atomic.Int64
	// lose, in tests, makes the answer of a transaction that committed
	// look lost (true: as if etcd's answer never came).
	lose func() bool
	// expected calls are about to be written (the engine said so,
	// Dispatcher.Expect): the next transaction waits for them while they
	// keep coming (expectGap since the last one), until expectUntil at
	// most.
	expected    int
	expectUntil time.Time
	lastCame    time.Time
}

// expectGap is how long the writer waits for the next call announced, and
// expectHold how long for all of them. The engine starts them together,
// but their goroutines reach the writer spread over a few milliseconds
// when the machine is busy (the etcd members applying the commit that
// started them): without waiting, a level's offers would go in two
// transactions, and each agent would answer twice.
const (
	expectGap  = 10 * time.Millisecond
	expectHold = 30 * time.Millisecond
)

// expect says that n calls are about to be written.
func (w *writer) expect(n int) {
	w.mu.Lock()
	now := time.Now()
	w.expected += n
	w.expectUntil = now.Add(expectHold)
	w.lastCame = now
	w.mu.Unlock()
}

type wreq struct {
	ctx  context.Context
	node string
	ops  []clientv3.Op
	// offer, instead of ops: a call offered to an agent, written in the
	// agent's offer batch of the transaction.
	offer *offer
	size  int       // the bytes it writes, about (an offer: its JSON, more than its packed batch sends)
	done  chan wres // nil: nobody waits
	// lazy: clean-up that starts no transaction of its own before
	// lazyWait; it goes with the next other write.
	lazy bool
	at   time.Time
}

// lazyWait is how long clean-up waits for another write to go with.
const lazyWait = 100 * time.Millisecond

// cost is what r counts against the ops budget: its operations; an offer
// none (the offers of a transaction go in one nested transaction per agent
// and maxOfferBytes, counted apart, see takeLocked and groupOffers).
func (r *wreq) cost() int {
	if r.offer != nil {
		return 0
	}
	return max(1, len(r.ops))
}

// maxOffers bounds the offers of one transaction.
const maxOffers = 1000

type wres struct {
	rev int64
	err error
	// held: every nested transaction among the write's operations took
	// its Then branch (an offer: the agent's offer batch was written).
	held bool
	key  string // an offer held: its offer batch
}

func newWriter(cli *clientv3.Client, log *zap.Logger, limit int, group func([]*wreq) []offerGroup, marks string) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cli: cli, log: log, ctx: ctx, cancel: cancel, busy: map[string]bool{}, wake: make(chan struct{}, 1), group: group, limit: limit, marks: marks}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.loop() }()
	return w
}

// close writes what is queued (giving up after a few seconds if etcd is
// unreachable) and stops.
func (w *writer) close() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.signal()
	t := time.AfterFunc(5*time.Second, w.cancel)
	defer t.Stop()
	w.wg.Wait()
	w.cancel()
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// do writes ops (of node) and returns the revision they were committed at.
// It tries again while etcd is unreachable, until ctx is done.
func (w *writer) do(ctx context.Context, node string, ops ...clientv3.Op) (int64, error) {
	res := w.doTxn(ctx, node, ops...)
	return res.rev, res.err
}

// doTxn is do, telling also whether the nested transactions among ops
// held (took their Then branch).
func (w *writer) doTxn(ctx context.Context, node string, ops ...clientv3.Op) wres {
	return w.doReq(ctx, &wreq{ctx: ctx, node: node, ops: ops})
}

// doOffer writes o in its agent's offer batch (or unclaimed, if the
// agent's registration is no longer under its lease).
func (w *writer) doOffer(ctx context.Context, node string, o *offer) wres {
	return w.doReq(ctx, &wreq{ctx: ctx, node: node, offer: o, size: len(o.cval) + 200})
}

func (w *writer) doReq(ctx context.Context, r *wreq) wres {
	r.done = make(chan wres, 1)
	if r.size == 0 {
		for _, op := range r.ops {
			r.size += len(op.KeyBytes()) + len(op.ValueBytes())
		}
	}
	if err := w.enqueue(r); err != nil {
		return wres{err: err}
	}
	select {
	case res := <-r.done:
		return res
	case <-ctx.Done():
		return wres{err: ctx.Err()}
	case <-w.ctx.Done():
		return wres{err: w.ctx.Err()}
	}
}

// async writes ops of node without waiting.
func (w *writer) async(node string, ops ...clientv3.Op) {
	w.asyncReq(&wreq{ctx: w.ctx, node: node, ops: ops})
}

// cleanUp deletes what is consumed without waiting, with the next other
// write (or within lazyWait): a transaction of its own costs etcd as much
// as the offers that would wait behind it.
func (w *writer) cleanUp(node string, ops ...clientv3.Op) {
	w.asyncReq(&wreq{ctx: w.ctx, node: node, ops: ops, lazy: true, at: time.Now()})
}

func (w *writer) asyncReq(r *wreq) {
	for _, op := range r.ops {
		r.size += len(op.KeyBytes()) + len(op.ValueBytes())
	}
	w.enqueue(r)
}

func (w *writer) enqueue(r *wreq) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	w.queue = append(w.queue, r)
	if r.done != nil && w.expected > 0 {
		w.expected--
		w.lastCame = time.Now()
	}
	w.mu.Unlock()
	w.signal()
	return nil
}

// loop starts a transaction whenever one may be in flight and writes are
// queued that may go, until closed with nothing left.
func (w *writer) loop() {
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	for {
		w.mu.Lock()
		var batch []*wreq
		var wait <-chan time.Time
		if w.expected > 0 && len(w.queue) > 0 {
			if d := min(time.Until(w.expectUntil), time.Until(w.lastCame.Add(expectGap))); d > 0 {
				hold.Reset(d)
				wait = hold.C
			} else {
				w.expected = 0
			}
		}
		if wait == nil && !w.closing && len(w.queue) > 0 {
			lazy := true
			oldest := time.Now()
			for _, r := range w.queue {
				if !r.lazy {
					lazy = false
					break
				}
				if r.at.Before(oldest) {
					oldest = r.at
				}
			}
			if d := lazyWait - time.Since(oldest); lazy && d > 0 {
				hold.Reset(d)
				wait = hold.C
			}
		}
		if w.inFlight < maxInFlight && wait == nil {
			batch = w.takeLocked()
		}
		if batch != nil {
			w.inFlight++
			for _, r := range batch {
				w.busy[r.node] = true
			}
		}
		idle := w.inFlight == 0 && len(w.queue) == 0
		closing := w.closing
		w.mu.Unlock()
		if batch != nil {
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.commit(batch)
				w.mu.Lock()
				w.inFlight--
				for _, r := range batch {
					delete(w.busy, r.node)
				}
				w.mu.Unlock()
				w.signal()
			}()
			continue
		}
		if idle && closing {
			return
		}
		select {
		case <-w.wake:
		case <-wait:
		case <-w.ctx.Done():
			w.fail(w.ctx.Err())
			return
		}
		if wait != nil && !hold.Stop() {
			select {
			case <-hold.C:
			default:
			}
		}
	}
}

// takeLocked takes the writes that may go now, oldest first: not of a node
// with a write in flight, or held back, or already in this batch; within
// the ops budget (an offer to an agent not offered to yet in the batch
// counts one: its offer batch, as does each maxOfferBytes of offers) and
// maxTxnBytes. Offers count their JSON: their batches are packed after
// (zvalue.go), never larger. nil: none.
func (w *writer) takeLocked() []*wreq {
	var batch, rest []*wreq
	held := map[string]bool{}
	pairs := map[offerPair]bool{}
	n, size, offers, offerBytes := 0, 0, 0, 0
	budget := opsBudget(w.limit)
	for i, r := range w.queue {
		cost := r.cost()
		if r.offer != nil {
			if !pairs[r.offer.pair()] {
				cost++
			}
			cost += (offerBytes+r.size)/maxOfferBytes - offerBytes/maxOfferBytes
		}
		full := n+cost > budget || size+r.size > maxTxnBytes || r.offer != nil && offers >= maxOffers
		if full && len(batch) > 0 {
			rest = append(rest, w.queue[i:]...)
			break
		}
		if w.busy[r.node] || held[r.node] {
			held[r.node] = true
			rest = append(rest, r)
			continue
		}
		held[r.node] = true // one write per node per transaction
		batch = append(batch, r)
		n += cost
		size += r.size
		if r.offer != nil {
			offers++
			offerBytes += r.size
			pairs[r.offer.pair()] = true
		}
	}
	w.queue = rest
	return batch
}

// fail answers every queued write with err (the writer is stopping).
func (w *writer) fail(err error) {
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	for _, r := range q {
		if r.done != nil {
			r.done <- wres{err: err}
		}
	}
}

// permanent reports whether etcd refused a request for what it holds (too
// many operations, too large, not allowed): sent again, it would be
// refused again.
func permanent(err error) bool { return etcdconn.Refused(err) }

// explainRefused says what to do about a refusal the operator can mend.
func explainRefused(err error) error {
	if errors.Is(err, rpctypes.ErrTooManyOps) {
		return fmt.Errorf("%w (the etcd members run with a --max-txn-ops below %d: set REPRISE_ETCD_MAX_TXN_OPS to it)", err, DefaultMaxTxnOps)
	}
	return err
}

// maxRideOps bounds the clean-up operations that ride in another
// transaction (takeLazy).
const maxRideOps = 32

// takeLazy takes the queued clean-up that may go now (as takeLocked
// would: no write of its node in flight or queued before it), most
// operations at most (and maxRideOps), for a transaction other than the
// writer's (the engine's commit, Prestart); put them back with requeue if
// it fails.
func (w *writer) takeLazy(most int) []*wreq {
	w.mu.Lock()
	defer w.mu.Unlock()
	var took, rest []*wreq
	ops := 0
	most = min(most, maxRideOps)
	seen := map[string]bool{}
	for _, r := range w.queue {
		if r.lazy && !w.busy[r.node] && !seen[r.node] && ops+len(r.ops) <= most {
			took = append(took, r)
			ops += len(r.ops)
			continue
		}
		seen[r.node] = true
		rest = append(rest, r)
	}
	if len(took) > 0 {
		w.queue = rest
	}
	return took
}

// requeue puts back clean-up taken by takeLazy whose transaction failed.
func (w *writer) requeue(reqs []*wreq) {
	for _, r := range reqs {
		w.enqueue(r)
	}
}
