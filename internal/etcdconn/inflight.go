package etcdconn

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A member that hangs (stopped, swapping, cut off behind a firewall that
// drops packets) keeps its connections open and answers nothing: no error
// tells the client to go elsewhere, every request sent to it waits for its
// caller's deadline, a watch hears nothing, and a lease kept alive through
// it expires (gRPC's keep-alive notices the dead connection after 15 s).
// So the leaderWatch keeps the requests in flight on the client's
// connection, each with a context of its own:
//
//   - a request unanswered for slowCall asks for a check of which member
//     leads (at most one per slowCall while the leader answers its
//     checks; as often as a check that found none allows otherwise);
//   - when a check moves the client to another member and the one it
//     leaves does not answer its status request (statusTimeout), every
//     request still in flight that was sent before the move is given up:
//     its context is cancelled and its caller gets codes.Unavailable
//     (errHung), which etcd's client retries by itself for a read, a
//     watch or a lease's keep-alive (on the new leader), and reprise's
//     writers as any write whose answer was lost: a write given up may
//     have been applied (the leader logged and replicated it before it
//     hung), exactly as one whose deadline passed on that member would
//     have been, so this adds no case the writers did not meet already
//     (the state store's transactions are compare-and-swap guarded and
//     look for what landed, etcdstate/txn.go);
//   - when a request sent before a move is still unanswered slowCall after
//     it was sent, every one sent before the move is given up too,
//     whatever the member left answered;
//   - a client whose only calls in flight are streams that wait for
//     nothing (a watch that saw no event, an agent waiting for work) would
//     not notice: when nothing came on its connection for idleProbe, it
//     asks its member for its status there (a request of its own, in
//     flight as the others: one unanswered for slowCall asks for a check,
//     and once the client moved, the watch is given up and resumed on the
//     new leader by etcd's client).
//
// A write sent during an election to a member that answers, which waited
// for etcd's request timeout (6 s on the test clusters) when it had
// forwarded it to a leader that died, is given up by the second rule once
// the client moved to the new leader (TestKilledLeaderWrites: in 10 runs,
// whichever member was elected, the writes stalled 1.25 s at most). One
// that waits on the member the client stays on (it was elected) is not
// given up: that member answers it, by etcd's request timeout at worst.

// slowCall is how long a request may wait for its answer before it asks
// for a check (and, sent before the client moved, is given up).
const slowCall = 300 * time.Millisecond

// idleProbe is how long a connection with calls in flight may stay
// without a reply before the client asks its member for its status.
const idleProbe = 500 * time.Millisecond

// statusTimeout bounds each member's answer to a check's status request:
// a member that answers reads within milliseconds; one that does not
// within a second is hung, or too slow to lead. Dial's timeout, when
// shorter, bounds it instead.
var statusTimeout = time.Second

// probeIdle asks the client's member for its status, on the client's
// connection, when calls are in flight there and no reply came for
// idleProbe (and no probe is under way).
func (w *leaderWatch) probeIdle(now time.Time) {
	conn := w.conn.Load()
	if conn == nil || now.Sub(time.Unix(0, w.lastRead.Load())) < idleProbe || w.calls.count() == 0 || !w.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer w.probing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), w.period)
		defer cancel()
		pb.NewMaintenanceClient(conn).Status(ctx, &pb.StatusRequest{})
		// Answered or not (a refusal is an answer; one that never came
		// asked for a check meanwhile): the next probe idleProbe later,
		// not at the next scan.
		w.lastRead.Store(time.Now().UnixNano())
	}()
}

// call is a request (or stream) in flight on the client's connection.
type call struct {
	gen     uint64       // the watch's generation (its moves) when it was sent
	waiting atomic.Int64 // UnixNano since it waits for an answer; 0 while it does not (an idle stream)
	cancel  context.CancelFunc
	why     atomic.Pointer[error] // set when the watch gave it up
}

// abortedErr returns why the watch gave c up, nil if it did not or if the
// caller's own context ended too (its error is the caller's).
func (c *call) abortedErr(ctx context.Context) error {
	p := c.why.Load()
	if p == nil || ctx.Err() != nil {
		return nil
	}
	return *p
}

// errHung is the error of a request given up: codes.Unavailable, which
// etcd's client and reprise's writers treat as "try again".
func errHung(format string, args ...any) error {
	return status.Errorf(codes.Unavailable, "etcd: "+format+"; given up (a write may or may not have been applied)", args...)
}

// inflight is the leaderWatch's record of its client's calls.
type inflight struct {
	mu    sync.Mutex
	gen   uint64 // moves made so far
	calls map[*call]struct{}
	to    string // the endpoint of the last move
}

// track records a call sent with ctx and returns the context to send it
// with; waiting says it waits for an answer from now (a unary request).
func (f *inflight) track(ctx context.Context, waiting bool) (*call, context.Context) {
	cctx, cancel := context.WithCancel(ctx)
	c := &call{cancel: cancel}
	if waiting {
		c.waiting.Store(time.Now().UnixNano())
	}
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[*call]struct{})
	}
	c.gen = f.gen
	f.calls[c] = struct{}{}
	f.mu.Unlock()
	return c, cctx
}

// done forgets c and releases its context.
func (f *inflight) done(c *call) {
	f.forget(c)
	c.cancel()
}

func (f *inflight) forget(c *call) {
	f.mu.Lock()
	delete(f.calls, c)
	f.mu.Unlock()
}

// count returns how many calls are in flight.
func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// moved records a move of the client to endpoint to and returns its
// generation: calls sent before have a smaller one.
func (f *inflight) moved(to string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	f.to = to
	return f.gen
}

// giveUp gives up every call sent before generation gen (that matches
// match, when not nil), with err, and returns how many it gave up.
func (f *inflight) giveUp(gen uint64, err error, match func(*call) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for c := range f.calls {
		if c.gen >= gen || match != nil && !match(c) {
			continue
		}
		if c.why.CompareAndSwap(nil, &err) {
			n++
		}
		c.cancel()
	}
	return n
}

// scan reports whether a call sent since the last move has waited
// slowCall for its answer; when one sent before has, the member left
// hangs: every call sent before the move is given up (an idle watch
// there would hear nothing more).
func (f *inflight) scan(now time.Time) (stuck bool) {
	limit := now.Add(-slowCall).UnixNano()
	stale := false
	f.mu.Lock()
	gen, to := f.gen, f.to
	for c := range f.calls {
		if w := c.waiting.Load(); w != 0 && w < limit {
			if c.gen == gen {
				stuck = true
			} else {
				stale = true
			}
		}
	}
	f.mu.Unlock()
	if stale {
		f.giveUp(gen, errHung("no answer within %s from the member a request was sent to, and the client moved to the leader at %s since", slowCall, to), nil)
	}
	return stuck
}

// watchedStream has every message it receives (watch events, lease
// keep-alives) read by its leaderWatch, and tells it when the stream
// waits for an answer (a message sent, none received since).
type watchedStream struct {
	grpc.ClientStream
	w   *leaderWatch
	c   *call
	ctx context.Context // the caller's
}

func (s *watchedStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil {
		s.c.waiting.CompareAndSwap(0, time.Now().UnixNano())
	}
	return err
}

func (s *watchedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.c.waiting.Store(0)
		s.w.read(m)
		return nil
	}
	s.w.calls.done(s.c)
	if aerr := s.c.abortedErr(s.ctx); aerr != nil {
		return aerr
	}
	return err
}
