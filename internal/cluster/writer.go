package cluster

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// maxBatchOps stays under etcd's --max-txn-ops (128 by default).
const maxBatchOps = 100

// lanes writes a few batches at once (etcd commits concurrent transactions
// in one Raft round); a node's writes always go through the same lane, in
// order.
type lanes []*writer

func newLanes(n int, cli *clientv3.Client, log *zap.Logger) lanes {
	l := make(lanes, n)
	for i := range l {
		l[i] = newWriter(cli, log)
	}
	return l
}

func (l lanes) of(node string) *writer {
	h := fnv.New32a()
	h.Write([]byte(node))
	return l[h.Sum32()%uint32(len(l))]
}

func (l lanes) do(ctx context.Context, node string, ops ...clientv3.Op) (int64, error) {
	return l.of(node).do(ctx, node, ops...)
}

func (l lanes) async(node string, ops ...clientv3.Op) { l.of(node).async(node, ops...) }

func (l lanes) close() {
	for _, w := range l {
		w.close()
	}
}

// writer groups the dispatcher's unconditional writes (items put, work
// consumed) into few transactions: one Raft round for many nodes. Writes
// of one node keep their order and never share a transaction.
type writer struct {
	cli     *clientv3.Client
	log     *zap.Logger
	ctx     context.Context // ends after the last write
	cancel  context.CancelFunc
	ch      chan *wreq
	closing chan struct{}
	wg      sync.WaitGroup
}

type wreq struct {
	ctx  context.Context
	node string
	ops  []clientv3.Op
	done chan wres // nil: nobody waits
}

type wres struct {
	rev int64
	err error
}

func newWriter(cli *clientv3.Client, log *zap.Logger) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cli: cli, log: log, ctx: ctx, cancel: cancel, ch: make(chan *wreq, 1024), closing: make(chan struct{})}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); defer cancel(); w.loop() }()
	return w
}

// close writes what is queued (giving up after a few seconds if etcd is
// unreachable) and stops.
func (w *writer) close() {
	close(w.closing)
	t := time.AfterFunc(5*time.Second, w.cancel)
	defer t.Stop()
	w.wg.Wait()
}

// do writes ops (of node) and returns the revision they were committed at.
// It tries again while etcd is unreachable, until ctx is done.
func (w *writer) do(ctx context.Context, node string, ops ...clientv3.Op) (int64, error) {
	r := &wreq{ctx: ctx, node: node, ops: ops, done: make(chan wres, 1)}
	select {
	case w.ch <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-w.ctx.Done():
		return 0, w.ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.rev, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// async writes ops of node without waiting.
func (w *writer) async(node string, ops ...clientv3.Op) {
	select {
	case w.ch <- &wreq{ctx: w.ctx, node: node, ops: ops}:
	case <-w.ctx.Done():
	}
}

func (w *writer) loop() {
	var next *wreq
	for {
		if next == nil {
			select {
			case next = <-w.ch:
			case <-w.closing:
				select {
				case next = <-w.ch:
				default:
					return
				}
			case <-w.ctx.Done():
				return
			}
		}
		batch := []*wreq{next}
		nodes := map[string]bool{next.node: true}
		n := len(next.ops)
		next = nil
	fill:
		for n < maxBatchOps {
			select {
			case r := <-w.ch:
				if nodes[r.node] || n+len(r.ops) > maxBatchOps {
					next = r
					break fill
				}
				batch = append(batch, r)
				nodes[r.node] = true
				n += len(r.ops)
			default:
				break fill
			}
		}
		w.commit(batch)
	}
}

func (w *writer) commit(batch []*wreq) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		var ops []clientv3.Op
		live := batch[:0]
		for _, r := range batch {
			if r.ctx.Err() != nil {
				if r.done != nil {
					r.done <- wres{err: r.ctx.Err()}
				}
				continue
			}
			live = append(live, r)
			ops = append(ops, r.ops...)
		}
		batch = live
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		resp, err := w.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err == nil {
			for _, r := range batch {
				if r.done != nil {
					r.done <- wres{rev: resp.Header.Revision}
				}
			}
			return
		}
		if w.ctx.Err() != nil {
			for _, r := range batch {
				if r.done != nil {
					r.done <- wres{err: err}
				}
			}
			return
		}
		w.log.Warn("write work to etcd: trying again", zap.Error(err))
		sleep(w.ctx, wait)
	}
}
