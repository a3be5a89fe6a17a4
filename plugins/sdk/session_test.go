package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// TestSessionFirstMessage: the host waits for a first message without
// frames to know the plugin serves sessions; it comes before the host sends
// anything.
func TestSessionFirstMessage(t *testing.T) {
	c := pair(t, scripted{})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	st, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatalf("first Recv: %v", err)
	}
	if len(first.GetFrames()) != 0 {
		t.Errorf("first message %v, want no frames", first)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after CloseSend of an idle session = %v, %v; want io.EOF", m, err)
	}
}

// TestSessionConcurrentRestores sends 20 Restore calls in one message: each
// gets the events the unary Restore stream gives for the same request, in
// the same order, and exactly one result; a panicking call fails alone.
func TestSessionConcurrentRestores(t *testing.T) {
	c := pair(t, scripted{})
	s := openSession(t, c)
	tests := map[string]struct {
		status pluginv1.Status
		msg    string // a part of the result's message
	}{
		"ok":    {pluginv1.Status_STATUS_SUCCEEDED, "restored 12 studies"},
		"fail":  {pluginv1.Status_STATUS_FAILED, "no space left on device"},
		"wait":  {pluginv1.Status_STATUS_WAITING, "waiting for approval"},
		"panic": {pluginv1.Status_STATUS_FAILED, "plugin panic"},
	}
	dos := []string{"ok", "fail", "wait", "panic"}
	reqs := map[uint64]*pluginv1.StepRequest{}
	var frames []*pluginv1.CallFrame
	var ids []uint64
	for i := range 20 {
		id := uint64(1000 + 7*i) // any ids: the host chooses them
		mode := pluginv1.Mode_MODE_NORMAL
		if i%3 == 0 {
			mode = pluginv1.Mode_MODE_DRY_RUN
		}
		reqs[id] = &pluginv1.StepRequest{NodeId: fmt.Sprintf("node-%d", i), Attempt: int32(1 + i%3), Mode: mode,
			ConfigJson: []byte(`{"do":"` + dos[i%len(dos)] + `"}`),
			Inputs:     map[string]*pluginv1.Outputs{"storage": {Values: map[string]string{"mount": fmt.Sprintf("/mnt/%d", i)}}}}
		frames = append(frames, &pluginv1.CallFrame{Id: id, Op: pluginv1.Op_OP_RESTORE, Request: reqs[id]})
		ids = append(ids, id)
	}
	s.send(frames...)
	got := s.await(ids...)

	ctx := context.Background()
	for i, id := range ids {
		do := dos[i%len(dos)]
		what := fmt.Sprintf("call %d (%s)", id, do)
		res := wantResult(t, what, got[id], tests[do].status)
		if !strings.Contains(res.GetMessage(), tests[do].msg) {
			t.Errorf("%s: result message %q, want it to hold %q", what, res.GetMessage(), tests[do].msg)
		}
		unary, err := restoreAll(t, c, ctx, reqs[id])
		if err != nil {
			t.Fatalf("unary Restore of %s: %v", what, err)
		}
		if len(unary) != len(got[id]) {
			t.Errorf("%s: %d frames %v, the unary Restore gives %d events %v", what, len(got[id]), got[id], len(unary), unary)
			continue
		}
		for j, ev := range unary {
			if !proto.Equal(got[id][j].GetEvent(), ev) {
				t.Errorf("%s: frame %d holds %v, the unary Restore gives %v", what, j, got[id][j].GetEvent(), ev)
			}
		}
	}

	// The panics took nothing down: the session serves further calls.
	s.send(restoreFrame(1, "after", "ok"), restoreFrame(2, "after", "panic"), restoreFrame(3, "after", "ok"))
	got = s.await(1, 2, 3)
	wantResult(t, "call 1 after the panics", got[1], pluginv1.Status_STATUS_SUCCEEDED)
	wantResult(t, "call 2 after the panics", got[2], pluginv1.Status_STATUS_FAILED)
	wantResult(t, "call 3 after the panics", got[3], pluginv1.Status_STATUS_SUCCEEDED)
}

// TestSessionUnaryOps: Validate, Check and Verify through a session answer
// what the unary RPCs answer for the same request, errors included.
func TestSessionUnaryOps(t *testing.T) {
	configs := []string{``, `{}`, `{"done":true}`, `{"healthy":true}`, `{"do":"ok","n":1,"extra":true}`, `not json`, `[1]`, `null`}
	ops := []pluginv1.Op{pluginv1.Op_OP_VALIDATE, pluginv1.Op_OP_CHECK, pluginv1.Op_OP_VERIFY}
	ctx := context.Background()
	for _, impl := range []struct {
		name string
		p    Plugin
	}{{"capable", capable{}}, {"defaults", scripted{}}} {
		t.Run(impl.name, func(t *testing.T) {
			c := pair(t, impl.p)
			s := openSession(t, c)
			type call struct {
				op  pluginv1.Op
				req *pluginv1.StepRequest
			}
			calls := map[uint64]call{}
			var frames []*pluginv1.CallFrame
			var ids []uint64
			for _, op := range ops {
				for _, cfg := range configs {
					id := uint64(len(ids) + 1)
					calls[id] = call{op, stepRequest("n"+fmt.Sprint(id), cfg)}
					frames = append(frames, &pluginv1.CallFrame{Id: id, Op: op, Request: calls[id].req})
					ids = append(ids, id)
				}
			}
			s.send(frames...)
			got := s.await(ids...)
			for _, id := range ids {
				cl := calls[id]
				what := fmt.Sprintf("%s with config %q (call %d)", cl.op, cl.req.GetConfigJson(), id)
				if len(got[id]) != 1 {
					t.Errorf("%s: frames %v, want one", what, got[id])
					continue
				}
				f := got[id][0]
				var (
					want, answer proto.Message
					err          error
				)
				switch cl.op {
				case pluginv1.Op_OP_VALIDATE:
					want, err = c.Validate(ctx, cl.req)
					answer = f.GetValidate()
				case pluginv1.Op_OP_CHECK:
					want, err = c.Check(ctx, cl.req)
					answer = f.GetCheck()
				case pluginv1.Op_OP_VERIFY:
					want, err = c.Verify(ctx, cl.req)
					answer = f.GetResult()
				}
				if err != nil {
					st := status.Convert(err)
					e := f.GetError()
					if e == nil || codes.Code(e.GetCode()) != st.Code() || e.GetMessage() != st.Message() {
						t.Errorf("%s: frame %v, the unary RPC fails with %v", what, f, err)
					}
					continue
				}
				if f.GetReply() == nil || !proto.Equal(answer, want) {
					t.Errorf("%s: frame %v, the unary RPC answers %v", what, f, want)
				}
			}
		})
	}
}

// TestSessionCancel: OP_CANCEL stops a running call, which ends with a
// Canceled error; the other calls go on.
func TestSessionCancel(t *testing.T) {
	started := make(chan string, 4)
	c := pair(t, signalling{started: started})
	s := openSession(t, c)
	s.send(restoreFrame(1, "h1", "hang"), restoreFrame(2, "h2", "hang"), restoreFrame(3, "o3", "ok"))
	waitStarted(t, started, "h1", "h2")
	s.send(cancelFrame(1))
	got := s.await(1, 3)
	if len(got[1]) != 1 {
		t.Errorf("cancelled call: frames %v, want only its error", got[1])
	}
	wantError(t, "cancelled call 1", got[1], codes.Canceled)
	wantResult(t, "call 3", got[3], pluginv1.Status_STATUS_SUCCEEDED)

	// Call 2 still runs: a call started after the cancel ends first.
	s.send(restoreFrame(4, "o4", "ok"))
	got = s.await(4)
	wantResult(t, "call 4", got[4], pluginv1.Status_STATUS_SUCCEEDED)
	if s.ended[2] {
		t.Fatalf("cancelling call 1 ended call 2: %v", s.frames[2])
	}
	s.send(cancelFrame(2))
	wantError(t, "cancelled call 2", s.await(2)[2], codes.Canceled)
}

// TestSessionTimeout: a call's timeout_micros ends it with DeadlineExceeded,
// not before the timeout; a call with a timeout it meets is unaffected.
func TestSessionTimeout(t *testing.T) {
	c := pair(t, capable{})
	s := openSession(t, c)
	const timeout = 50 * time.Millisecond
	sentAt := time.Now()
	hang := restoreFrame(1, "h", "hang")
	hang.TimeoutMicros = timeout.Microseconds()
	ok := restoreFrame(2, "o", "ok")
	ok.TimeoutMicros = patience.Microseconds()
	verify := &pluginv1.CallFrame{Id: 3, Op: pluginv1.Op_OP_VERIFY, Request: stepRequest("v", `{"healthy":true}`),
		TimeoutMicros: patience.Microseconds()}
	s.send(hang, ok, verify)
	got := s.await(1)
	if took := time.Since(sentAt); took < timeout {
		t.Errorf("call with a %v timeout ended after %v", timeout, took)
	}
	wantError(t, "call 1", got[1], codes.DeadlineExceeded)
	got = s.await(2, 3)
	wantResult(t, "call 2", got[2], pluginv1.Status_STATUS_SUCCEEDED)
	if r := got[3][len(got[3])-1].GetResult(); r.GetStatus() != pluginv1.Status_STATUS_SUCCEEDED {
		t.Errorf("call 3: frames %v, want a Verify result SUCCEEDED", got[3])
	}
}

// TestSessionBadFrames: a frame without a request is InvalidArgument, an
// unknown op Unimplemented; each ends its call alone and the session goes on.
func TestSessionBadFrames(t *testing.T) {
	c := pair(t, scripted{})
	s := openSession(t, c)
	req := stepRequest("x", `{"do":"ok"}`)
	tests := []struct {
		name  string
		frame *pluginv1.CallFrame
		want  codes.Code
	}{
		{"restore without request", &pluginv1.CallFrame{Op: pluginv1.Op_OP_RESTORE}, codes.InvalidArgument},
		{"verify without request", &pluginv1.CallFrame{Op: pluginv1.Op_OP_VERIFY}, codes.InvalidArgument},
		{"check without request", &pluginv1.CallFrame{Op: pluginv1.Op_OP_CHECK}, codes.InvalidArgument},
		{"validate without request", &pluginv1.CallFrame{Op: pluginv1.Op_OP_VALIDATE}, codes.InvalidArgument},
		{"unknown op", &pluginv1.CallFrame{Op: pluginv1.Op(99), Request: req}, codes.Unimplemented},
		{"unspecified op", &pluginv1.CallFrame{Op: pluginv1.Op_OP_UNSPECIFIED, Request: req}, codes.Unimplemented},
	}
	for i, tt := range tests {
		id := uint64(10 + i)
		tt.frame.Id = id
		s.send(tt.frame)
		got := s.await(id)
		if len(got[id]) != 1 {
			t.Errorf("%s: frames %v, want only an error", tt.name, got[id])
		}
		wantError(t, tt.name, got[id], tt.want)
		// The session still serves calls.
		okID := uint64(100 + i)
		s.send(restoreFrame(okID, "x", "ok"))
		wantResult(t, "Restore after "+tt.name, s.await(okID)[okID], pluginv1.Status_STATUS_SUCCEEDED)
	}
}

// TestSessionCloseSend: when the host half-closes, the calls in flight are
// cancelled, their answers sent, and only then does the stream end.
func TestSessionCloseSend(t *testing.T) {
	started := make(chan string, 4)
	c := pair(t, signalling{started: started})
	s := openSession(t, c)
	s.send(restoreFrame(1, "h1", "hang"), restoreFrame(2, "h2", "hang"))
	waitStarted(t, started, "h1", "h2")
	if err := s.st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		m, ok := s.next()
		if !ok {
			break
		}
		s.take(m)
	}
	if !errors.Is(s.end, io.EOF) {
		t.Errorf("the stream ended with %v, want io.EOF", s.end)
	}
	if p := s.pending(nil); len(p) > 0 {
		t.Fatalf("the stream ended before calls %v ended", p)
	}
	wantError(t, "call 1", s.frames[1], codes.Canceled)
	wantError(t, "call 2", s.frames[2], codes.Canceled)
}

// TestSessionSplitsMessages: frames that together pass wire.MaxBatchBytes go in
// several messages, each under gRPC's 4 MiB limit, the call's frames still
// in order.
func TestSessionSplitsMessages(t *testing.T) {
	const lines, size = 4, 600 << 10
	logged := make(chan struct{}, 1)
	c := pair(t, chatty{logged: logged})
	s := openSession(t, c)
	s.send(&pluginv1.CallFrame{Id: 1, Op: pluginv1.Op_OP_RESTORE,
		Request: stepRequest("big", fmt.Sprintf(`{"lines":%d,"size":%d}`, lines, size))})
	// Receive nothing until every line is queued: the writer then has
	// several lines to send at once.
	select {
	case <-logged:
	case <-time.After(patience):
		t.Fatalf("the plugin did not log its %d lines in %v", lines, patience)
	}
	got := s.await(1)[1]

	carrying := 0
	for i, m := range s.msgs {
		n := proto.Size(m)
		if n >= 4<<20 {
			t.Errorf("message %d is %d bytes, want under 4 MiB", i, n)
		}
		sum, big := 0, 0
		for _, f := range m.GetFrames() {
			sum += proto.Size(f)
			if len(f.GetEvent().GetLog().GetMessage()) == size {
				big++
			}
		}
		if len(m.GetFrames()) > 1 && sum > wire.MaxBatchBytes {
			t.Errorf("message %d holds %d frames of %d bytes, over wire.MaxBatchBytes (%d)", i, len(m.GetFrames()), sum, wire.MaxBatchBytes)
		}
		if big > 0 {
			carrying++
		}
	}
	if carrying < 2 {
		t.Errorf("%d lines of %d bytes came in %d message(s), want several", lines, size, carrying)
	}
	res := wantResult(t, "call 1", got, pluginv1.Status_STATUS_SUCCEEDED)
	if want := fmt.Sprintf("logged %d lines", lines); res.GetMessage() != want {
		t.Errorf("result message %q, want %q", res.GetMessage(), want)
	}
	if len(got) != lines+1 {
		t.Fatalf("%d frames, want %d lines then the result", len(got), lines)
	}
	for i, f := range got[:lines] {
		msg := f.GetEvent().GetLog().GetMessage()
		if len(msg) != size || strings.Trim(msg, string(rune('a'+i))) != "" {
			t.Errorf("frame %d: a log line of %d bytes starting %.8q, want line %d (%d × %q)", i, len(msg), msg, i, size, rune('a'+i))
		}
	}
}
