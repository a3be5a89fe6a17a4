package sdk

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// maxQueuedFrames and maxQueuedBytes bound the frames waiting to be sent;
// a call that emits more waits for the writer (the host is slower than the
// plugin).
const (
	maxQueuedFrames = 4096
	maxQueuedBytes  = 8 << 20
)

// Session serves many calls over one stream (plugins/proto/README.md,
// "Sessions"): the host's frames start or cancel calls, each call runs in
// its own goroutine through the same code as the per-call RPCs, and one
// writer sends the frames of every call's answer, as many as are ready in
// one message.
func (s *server) Session(gs pluginv1.Plugin_SessionServer) error {
	ctx, cancel := context.WithCancel(gs.Context())
	defer cancel()
	if err := gs.Send(&pluginv1.SessionDown{}); err != nil { // "sessions supported"
		return err
	}
	out := newOutbox()
	written := make(chan error, 1)
	go func() { written <- out.run(gs.Send) }()

	var (
		mu    sync.Mutex
		calls = map[uint64]context.CancelFunc{}
		wg    sync.WaitGroup
		pool  = workers{idle: make(chan func())}
	)
	defer pool.stop()
	var recvErr error
	for {
		up, err := gs.Recv()
		if err != nil {
			recvErr = err
			break
		}
		starts := 0
		for _, f := range up.GetFrames() {
			if f.GetOp() != pluginv1.Op_OP_CANCEL {
				starts++
			}
		}
		out.announce(starts)
		for _, f := range up.GetFrames() {
			id := f.GetId()
			if f.GetOp() == pluginv1.Op_OP_CANCEL {
				mu.Lock()
				stop := calls[id]
				mu.Unlock()
				if stop != nil {
					stop()
				}
				continue
			}
			var (
				callCtx context.Context
				stop    context.CancelFunc
			)
			if t := f.GetTimeoutMicros(); t > 0 {
				callCtx, stop = context.WithTimeout(ctx, time.Duration(t)*time.Microsecond)
			} else {
				callCtx, stop = context.WithCancel(ctx)
			}
			mu.Lock()
			calls[id] = stop
			mu.Unlock()
			wg.Add(1)
			pool.run(func() {
				defer wg.Done()
				s.serveFrame(callCtx, f, out)
				out.answered()
				stop()
				mu.Lock()
				delete(calls, id)
				mu.Unlock()
			})
		}
	}
	// The host ended the session, or the connection broke: stop every call,
	// send what they answer, and only then return (no Send after return).
	cancel()
	wg.Wait()
	out.close()
	sendErr := <-written
	if errors.Is(recvErr, io.EOF) {
		return sendErr
	}
	return recvErr
}

// workers run a session's calls, each in a goroutine of its own, reusing
// the goroutines that have finished a call (and grown their stacks) for a
// while instead of starting one per call.
type workers struct {
	idle chan func()
}

// workerIdle is how long a goroutine waits for another call.
const workerIdle = 10 * time.Second

func (w *workers) run(job func()) {
	select {
	case w.idle <- job: // an idle worker takes it
		return
	default:
	}
	go func() {
		t := time.NewTimer(workerIdle)
		defer t.Stop()
		for {
			job()
			t.Reset(workerIdle)
			select {
			case j, ok := <-w.idle:
				if !ok {
					return
				}
				job = j
			case <-t.C:
				return
			}
		}
	}()
}

// stop ends the idle workers; run must not be called after.
func (w *workers) stop() { close(w.idle) }

// serveFrame runs one call of a session and queues its answer.
func (s *server) serveFrame(ctx context.Context, f *pluginv1.CallFrame, out *outbox) {
	id := f.GetId()
	reply := func(r *pluginv1.ReplyFrame) error {
		r.Id = id
		return out.push(r)
	}
	pb := f.GetRequest()
	if pb == nil {
		_ = reply(errorFrame(status.Errorf(codes.InvalidArgument, "call %d: %s without a request", id, f.GetOp())))
		return
	}
	var (
		r   *pluginv1.ReplyFrame
		err error
	)
	switch f.GetOp() {
	case pluginv1.Op_OP_RESTORE:
		err = s.restoreCall(ctx, pb, func(ev *pluginv1.RestoreEvent) error {
			return reply(&pluginv1.ReplyFrame{Reply: &pluginv1.ReplyFrame_Event{Event: ev}})
		})
	case pluginv1.Op_OP_VERIFY:
		var res *pluginv1.StepResult
		if res, err = s.Verify(ctx, pb); err == nil {
			r = &pluginv1.ReplyFrame{Reply: &pluginv1.ReplyFrame_Result{Result: res}}
		}
	case pluginv1.Op_OP_CHECK:
		var res *pluginv1.CheckResponse
		if res, err = s.Check(ctx, pb); err == nil {
			r = &pluginv1.ReplyFrame{Reply: &pluginv1.ReplyFrame_Check{Check: res}}
		}
	case pluginv1.Op_OP_VALIDATE:
		var res *pluginv1.ValidateResponse
		if res, err = s.Validate(ctx, pb); err == nil {
			r = &pluginv1.ReplyFrame{Reply: &pluginv1.ReplyFrame_Validate{Validate: res}}
		}
	default:
		err = status.Errorf(codes.Unimplemented, "call %d: unknown op %d", id, f.GetOp())
	}
	if err != nil {
		r = errorFrame(err)
	}
	if r != nil {
		_ = reply(r) // an error here means the session is over: nobody reads it
	}
}

func errorFrame(err error) *pluginv1.ReplyFrame {
	st := status.Convert(err)
	return &pluginv1.ReplyFrame{Reply: &pluginv1.ReplyFrame_Error{Error: &pluginv1.CallError{
		Code: int32(st.Code()), Message: st.Message()}}}
}

// outbox queues the frames of a session's answers for its one writer.
type outbox struct {
	mu     sync.Mutex
	space  *sync.Cond // signalled when the queue is taken or the outbox ends
	frames []*pluginv1.ReplyFrame
	bytes  int // proto size of frames
	closed bool
	err    error // the first send error: the session is over
	wake   chan struct{}

	// expect counts the calls that came in one message and have not
	// answered yet: the writer waits for them, up to expectWait, so that
	// the answers of calls that end together leave in one message.
	expect atomic.Int64
}

// expectWait bounds how long the writer waits for the answers of calls
// that came together: a long call costs its companions' answers this much
// delay, once.
var expectWait atomic.Int64 // nanoseconds

func init() { expectWait.Store(int64(200 * time.Microsecond)) }

// announce counts n calls that came in one message.
func (o *outbox) announce(n int) {
	if n > 1 {
		o.expect.Add(int64(n))
	}
}

// answered counts one call as answered (its last frame queued).
func (o *outbox) answered() {
	for {
		n := o.expect.Load()
		if n <= 0 || o.expect.CompareAndSwap(n, n-1) {
			if n == 1 {
				o.signal()
			}
			return
		}
	}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// waitAnswers waits until the calls counted by announce have answered, or
// expectWait has passed (then the count is dropped).
func (o *outbox) waitAnswers(t *time.Timer) {
	if o.expect.Load() <= 0 {
		return
	}
	t.Reset(time.Duration(expectWait.Load()))
	defer t.Stop()
	for o.expect.Load() > 0 {
		select {
		case <-o.wake:
			o.mu.Lock()
			closed := o.closed
			o.mu.Unlock()
			if closed {
				return
			}
		case <-t.C:
			o.expect.Store(0)
			return
		}
	}
}

func newOutbox() *outbox {
	o := &outbox{wake: make(chan struct{}, 1)}
	o.space = sync.NewCond(&o.mu)
	return o
}

// push queues f; it waits while the queue is full, and fails once the
// session can no longer send.
func (o *outbox) push(f *pluginv1.ReplyFrame) error {
	if !validReply(f) {
		wire.FixUTF8(f) // an invalid string would end the whole session
	}
	size := proto.Size(f)
	o.mu.Lock()
	for len(o.frames) > 0 && (len(o.frames) >= maxQueuedFrames || o.bytes+size > maxQueuedBytes) && o.err == nil && !o.closed {
		o.space.Wait()
	}
	switch {
	case o.err != nil:
		err := o.err
		o.mu.Unlock()
		return err
	case o.closed:
		o.mu.Unlock()
		return errors.New("session closed")
	}
	o.frames = append(o.frames, f)
	o.bytes += size
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// close makes run send what is queued and return.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.space.Broadcast()
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run sends the queued frames until close: every frame queued by then in
// one message (at most wire.MaxBatchBytes). Before taking the queue it lets the
// other runnable goroutines (calls about to answer) run first, so that one
// message carries the answers of several calls.
func (o *outbox) run(send func(*pluginv1.SessionDown) error) error {
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for range o.wake {
		runtime.Gosched()
		o.waitAnswers(wait)
		o.mu.Lock()
		batch, closed := o.frames, o.closed
		o.frames, o.bytes = nil, 0
		o.space.Broadcast()
		o.mu.Unlock()
		for len(batch) > 0 {
			n := wire.SplitBatch(batch)
			if err := send(&pluginv1.SessionDown{Frames: batch[:n]}); err != nil {
				o.mu.Lock()
				o.err = err
				o.space.Broadcast()
				o.mu.Unlock()
				return err
			}
			batch = batch[n:]
		}
		if closed {
			return nil
		}
	}
	return nil
}
