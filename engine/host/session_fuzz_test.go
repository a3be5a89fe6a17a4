package host

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// replayStream is the host's side of a Session whose plugin sends msgs,
// then ends the stream.
type replayStream struct {
	grpc.ClientStream
	msgs []*pluginv1.SessionDown
	sent chan struct{} // closed once the host has sent its first message
	once sync.Once
}

func (r *replayStream) Send(*pluginv1.SessionUp) error {
	r.once.Do(func() { close(r.sent) })
	return nil
}

func (r *replayStream) Recv() (*pluginv1.SessionDown, error) {
	if len(r.msgs) == 0 {
		return nil, io.EOF
	}
	<-r.sent // answers come after the calls have been sent
	m := r.msgs[0]
	r.msgs = r.msgs[1:]
	return m, nil
}

// FuzzSessionReplies feeds whatever a plugin may send back in a session
// (any bytes, decoded as SessionDown messages) to three calls in flight: a
// Restore, a Check and a Verify. The host must not panic nor hang: every
// call ends, with an answer of the right kind or an error.
func FuzzSessionReplies(f *testing.F) {
	seed := func(frames ...*pluginv1.ReplyFrame) []byte {
		b, err := proto.Marshal(&pluginv1.SessionDown{Frames: frames})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	ok := &pluginv1.StepResult{Status: pluginv1.Status_STATUS_SUCCEEDED, Outputs: map[string]string{"k": "v"}}
	f.Add(seed(
		&pluginv1.ReplyFrame{Id: 1, Reply: &pluginv1.ReplyFrame_Event{Event: &pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Log{Log: &pluginv1.Log{Message: "copying"}}}}},
		&pluginv1.ReplyFrame{Id: 1, Reply: &pluginv1.ReplyFrame_Event{Event: &pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Result{Result: ok}}}},
		&pluginv1.ReplyFrame{Id: 2, Reply: &pluginv1.ReplyFrame_Check{Check: &pluginv1.CheckResponse{Restored: true}}},
		&pluginv1.ReplyFrame{Id: 3, Reply: &pluginv1.ReplyFrame_Result{Result: ok}},
	))
	f.Add(seed(
		&pluginv1.ReplyFrame{Id: 1, Reply: &pluginv1.ReplyFrame_Check{Check: &pluginv1.CheckResponse{}}},
		&pluginv1.ReplyFrame{Id: 2, Reply: &pluginv1.ReplyFrame_Error{Error: &pluginv1.CallError{Code: 99, Message: "x"}}},
		&pluginv1.ReplyFrame{Id: 3},
		&pluginv1.ReplyFrame{Id: 7, Reply: &pluginv1.ReplyFrame_Event{Event: &pluginv1.RestoreEvent{}}},
	))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pluginv1.SessionDown
		if err := proto.Unmarshal(data, &m); err != nil {
			return
		}
		stream := &replayStream{msgs: []*pluginv1.SessionDown{&m}, sent: make(chan struct{})}
		_, cancel := context.WithCancel(context.Background())
		s := &session{stream: stream, cancel: cancel, calls: map[uint64]*call{},
			done: make(chan struct{}), wake: make(chan struct{}, 1)}
		ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		// The three calls are registered (ids 1, 2, 3) before the stream is read.
		type answer struct {
			end *pluginv1.ReplyFrame
			err error
		}
		ops := []pluginv1.Op{pluginv1.Op_OP_RESTORE, pluginv1.Op_OP_CHECK, pluginv1.Op_OP_VERIFY}
		answers := make([]chan answer, len(ops))
		rs := &restoreEvents{outputs: newOutputGate(graphs.Limits{}, "n"), onEvent: func(step.Event) {}}
		for i, op := range ops {
			c, err := s.start(ctx, op, &pluginv1.StepRequest{NodeId: "n"})
			if err != nil {
				t.Fatal(err)
			}
			var onEvent func(*pluginv1.RestoreEvent)
			if op == pluginv1.Op_OP_RESTORE {
				onEvent = func(ev *pluginv1.RestoreEvent) { rs.event(ev) }
			}
			answers[i] = make(chan answer, 1)
			go func() {
				end, err := s.wait(ctx, c, onEvent)
				answers[i] <- answer{end, err}
			}()
		}
		go s.read()
		go s.write()
		for i, op := range ops {
			var a answer
			select {
			case a = <-answers[i]:
			case <-ctx.Done():
				t.Fatalf("%s call did not end", op)
			}
			if a.err != nil {
				// An error frame (a status) or the end of the session.
				var lost *sessionError
				if a.end == nil && !errors.As(a.err, &lost) {
					t.Fatalf("%s: error %v without an ending frame nor the session's end", op, a.err)
				}
				continue
			}
			if a.end == nil {
				t.Fatalf("%s: no ending frame and no error", op)
			}
			if op == pluginv1.Op_OP_RESTORE {
				if res := rs.event(a.end.GetEvent()); res != nil {
					_, _ = rs.result(step.Request{NodeID: "n", Plugin: "p"}, res)
				}
			}
		}
	})
}
