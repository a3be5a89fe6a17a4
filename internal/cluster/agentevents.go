package cluster

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/step"
)

// A step's events on its way from an agent to the coordinator.

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
