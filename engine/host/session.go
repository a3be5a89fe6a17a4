package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// session is the host's side of a plugin's Session stream: every step call
// to the process goes through it, the frames of all the calls that are
// ready leaving in one message. A gRPC stream per call costs more CPU on
// each side than the plugin's work for a milestone, and several wake-ups of
// idle threads; a frame in a shared message costs a few µs (engine/host/BENCH.md).
type session struct {
	stream pluginv1.Plugin_SessionClient
	cancel context.CancelFunc

	mu     sync.Mutex
	calls  map[uint64]*call
	nextID uint64
	queue  []*pluginv1.CallFrame
	wake   chan struct{}
	err    error         // why the session ended, once done is closed
	done   chan struct{} // closed when the session has ended

	// expect counts the calls announced by Expect (the engine starts
	// them together) and not queued yet: the writer waits for them, up to
	// expectWait, so that they leave in one message.
	expect atomic.Int64

	stats sessionStats
}

// sessionStats counts a session's messages and the frames they carried,
// each way: frames a message is what the batching achieves.
type sessionStats struct {
	sent, sentFrames, received, receivedFrames atomic.Int64
}

// logStats writes the session's counts to the debug log.
func (s *session) logStats(z *zap.Logger, p *proc) {
	p.log(z, zapcore.DebugLevel, "plugin session",
		zap.Int64("sent", s.stats.sent.Load()), zap.Int64("sent_frames", s.stats.sentFrames.Load()),
		zap.Int64("received", s.stats.received.Load()), zap.Int64("received_frames", s.stats.receivedFrames.Load()))
}

// expectWait bounds how long the writer waits for announced calls: a call
// that is announced but never made (its config failed to resolve) costs a
// message this much delay, once.
var expectWait atomic.Int64 // nanoseconds

func init() { expectWait.Store(int64(200 * time.Microsecond)) }

// call is one call in flight: the frames received for it, in order.
type call struct {
	id     uint64
	mu     sync.Mutex
	frames []*pluginv1.ReplyFrame
	queued int           // bytes of text in frames, about
	ready  chan struct{} // signalled when frames is not empty
	space  chan struct{} // signalled when frames were taken
	gone   chan struct{} // closed when the caller has stopped waiting
}

// maxCallQueue bounds the text received for one call and not yet taken by
// its caller: past it the session's reader waits, so that a plugin that
// writes faster than the engine logs is slowed down (gRPC flow control)
// instead of growing the host's memory.
const maxCallQueue = 4 << 20

// frameText approximates the memory a received frame holds.
func frameText(f *pluginv1.ReplyFrame) int {
	ev := f.GetEvent()
	return 64 + len(ev.GetLog().GetMessage()) + len(ev.GetProgress().GetMessage()) +
		len(ev.GetOutput().GetKey()) + len(ev.GetOutput().GetValue())
}

// sessionError is the end of a whole session, not the answer to one call:
// the connection to the plugin is gone.
type sessionError struct{ err error }

func (e *sessionError) Error() string { return "plugin session ended: " + e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

// openSession opens a Session with the plugin and waits for its first,
// empty message. A plugin without sessions answers codes.Unimplemented.
func openSession(ctx context.Context, rpc pluginv1.PluginClient) (*session, error) {
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := rpc.Session(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	first := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		first <- err
	}()
	select {
	case err = <-first:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s := &session{stream: stream, cancel: cancel, calls: map[uint64]*call{},
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go s.read()
	go s.write()
	return s, nil
}

func (s *session) end(err error) {
	s.mu.Lock()
	s.endLocked(err)
	s.mu.Unlock()
}

func (s *session) endLocked(err error) {
	if s.err == nil {
		s.err = err
		close(s.done)
	}
	s.cancel()
}

// read hands each received frame to its call.
func (s *session) read() {
	for {
		m, err := s.stream.Recv()
		if err != nil {
			s.end(err)
			return
		}
		var full []*call
		s.stats.received.Add(1)
		s.stats.receivedFrames.Add(int64(len(m.GetFrames())))
		s.mu.Lock()
		for _, f := range m.GetFrames() {
			if c := s.calls[f.GetId()]; c != nil {
				c.mu.Lock()
				c.frames = append(c.frames, f)
				c.queued += frameText(f)
				if c.queued > maxCallQueue {
					full = append(full, c)
				}
				c.mu.Unlock()
				select {
				case c.ready <- struct{}{}:
				default:
				}
			}
		}
		s.mu.Unlock()
		for _, c := range full {
			if !s.waitSpace(c) {
				return
			}
		}
	}
}

// waitSpace waits until c's caller has taken its frames (or stopped
// waiting); false when the session has ended.
func (s *session) waitSpace(c *call) bool {
	for {
		c.mu.Lock()
		ok := c.queued <= maxCallQueue
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.space:
		case <-c.gone:
			return true
		case <-s.done:
			return false
		}
	}
}

// write sends the queued frames: every frame queued by then in one
// message. Before taking the queue it lets the other runnable goroutines
// (callers about to queue a call) run first.
func (s *session) write() {
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		runtime.Gosched()
		if !s.waitExpected(wait) {
			return
		}
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for len(batch) > 0 {
			n := wire.SplitBatch(batch)
			s.stats.sent.Add(1)
			s.stats.sentFrames.Add(int64(n))
			if err := s.stream.Send(&pluginv1.SessionUp{Frames: batch[:n]}); err != nil {
				if !errors.Is(err, io.EOF) { // io.EOF: read gets the stream's real status
					s.end(err)
				}
				return
			}
			batch = batch[n:]
		}
	}
}

// waitExpected waits until the calls announced by Expect are queued, or
// expectWait has passed (then the announcement is dropped); false when the
// session has ended.
func (s *session) waitExpected(t *time.Timer) bool {
	if s.expect.Load() <= 0 {
		return true
	}
	t.Reset(time.Duration(expectWait.Load()))
	defer t.Stop()
	for s.expect.Load() > 0 {
		select {
		case <-s.wake: // a call was queued
		case <-t.C:
			s.expect.Store(0)
			return true
		case <-s.done:
			return false
		}
	}
	return true
}

// announce tells the writer that n calls are about to be made together.
func (s *session) announce(n int) {
	if n > 1 {
		s.expect.Add(int64(n))
	}
}

// queued counts one announced call as queued.
func (s *session) queued() {
	for {
		n := s.expect.Load()
		if n <= 0 || s.expect.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// enqueue queues f for write; s.mu is held.
func (s *session) enqueue(f *pluginv1.CallFrame) {
	s.queue = append(s.queue, f)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// do makes one call and returns the frame that ends it, passing the
// Restore events before it to onEvent (from the calling goroutine). A
// CallError frame comes back as a gRPC status error, the end of the whole
// session as a *sessionError, the caller's cancellation as a status error
// with codes.Canceled or codes.DeadlineExceeded (the plugin is told to stop).
func (s *session) do(ctx context.Context, op pluginv1.Op, req *pluginv1.StepRequest, onEvent func(*pluginv1.RestoreEvent)) (*pluginv1.ReplyFrame, error) {
	c, err := s.start(ctx, op, req)
	if err != nil {
		return nil, err
	}
	return s.wait(ctx, c, onEvent)
}

// start registers a call and queues its frame (ids follow the order of
// start's calls: 1, 2, 3 …).
func (s *session) start(ctx context.Context, op pluginv1.Op, req *pluginv1.StepRequest) (*call, error) {
	f := &pluginv1.CallFrame{Op: op, Request: req}
	if deadline, ok := ctx.Deadline(); ok {
		f.TimeoutMicros = max(time.Until(deadline).Microseconds(), 1)
	}
	c := &call{ready: make(chan struct{}, 1), space: make(chan struct{}, 1), gone: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, &sessionError{s.err}
	}
	s.nextID++
	c.id = s.nextID
	f.Id = c.id
	s.calls[c.id] = c
	s.queued()
	s.enqueue(f)
	return c, nil
}

// wait waits for the end of call c (see do) and unregisters it.
func (s *session) wait(ctx context.Context, c *call, onEvent func(*pluginv1.RestoreEvent)) (*pluginv1.ReplyFrame, error) {
	defer func() {
		s.mu.Lock()
		delete(s.calls, c.id)
		s.mu.Unlock()
		close(c.gone)
	}()
	for {
		select {
		case <-c.ready:
		case <-ctx.Done():
			s.mu.Lock()
			if s.err == nil {
				s.enqueue(&pluginv1.CallFrame{Id: c.id, Op: pluginv1.Op_OP_CANCEL})
			}
			s.mu.Unlock()
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.done:
			// Frames read before the end are still answers.
			if end, ok := c.drain(onEvent); ok {
				return end, replyError(end)
			}
			return nil, &sessionError{s.err}
		}
		if end, ok := c.drain(onEvent); ok {
			return end, replyError(end)
		}
	}
}

// drain passes c's received events to onEvent and returns the frame that
// ends the call, if it has come.
func (c *call) drain(onEvent func(*pluginv1.RestoreEvent)) (*pluginv1.ReplyFrame, bool) {
	c.mu.Lock()
	frames := c.frames
	c.frames, c.queued = nil, 0
	c.mu.Unlock()
	select {
	case c.space <- struct{}{}:
	default:
	}
	for _, f := range frames {
		if ev := f.GetEvent(); ev != nil && ev.GetResult() == nil {
			if onEvent != nil {
				onEvent(ev)
			}
			continue
		}
		return f, true // frames after the end break the contract: dropped
	}
	return nil, false
}

// replyError is the error an ending frame carries, if any.
func replyError(f *pluginv1.ReplyFrame) error {
	if e := f.GetError(); e != nil {
		return status.Error(codes.Code(e.GetCode()), e.GetMessage())
	}
	return nil
}

// unexpectedReply returns the error for an ending frame of the wrong kind.
func unexpectedReply(op pluginv1.Op, f *pluginv1.ReplyFrame) error {
	return status.Error(codes.Internal, fmt.Sprintf("plugin answered a %s call with %T", op, f.GetReply()))
}
