package sdk

// The host's side of a Session stream, and the scripted plugins, for the
// session tests (session_test.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// patience bounds every wait of these tests for the plugin: a test that
// waits longer fails, saying what it waited for.
const patience = 10 * time.Second

// session is the host's side of one Session stream in a test: it sends call
// frames and sorts the frames received by call, checking on the way that
// every frame belongs to a call that was sent and that nothing follows the
// frame ending a call.
type session struct {
	t      *testing.T
	st     pluginv1.Plugin_SessionClient
	downs  chan *pluginv1.SessionDown // closed when the stream ends
	end    error                      // how the stream ended; read once downs is closed
	sent   map[uint64]bool
	frames map[uint64][]*pluginv1.ReplyFrame
	ended  map[uint64]bool
	msgs   []*pluginv1.SessionDown // every message after the first, as received
}

// openSession opens a Session on c and checks that its first message has no
// frames. Messages are received by a goroutine one at a time, when the test
// asks for them (next).
func openSession(t *testing.T, c pluginv1.PluginClient) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := c.Session(ctx)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	s := &session{t: t, st: st, downs: make(chan *pluginv1.SessionDown),
		sent: map[uint64]bool{}, frames: map[uint64][]*pluginv1.ReplyFrame{}, ended: map[uint64]bool{}}
	go func() {
		defer close(s.downs)
		for {
			m, err := st.Recv()
			if err != nil {
				s.end = err
				return
			}
			select {
			case s.downs <- m:
			case <-ctx.Done():
				s.end = ctx.Err()
				return
			}
		}
	}()
	first, ok := s.next()
	if !ok {
		t.Fatalf("the session ended before its first message: %v", s.end)
	}
	if n := len(first.GetFrames()); n != 0 {
		t.Fatalf("first message of the session has %d frames (%v), want none", n, first)
	}
	return s
}

// next returns the next message of the plugin, or false once the stream has
// ended (s.end says how).
func (s *session) next() (*pluginv1.SessionDown, bool) {
	s.t.Helper()
	select {
	case m, ok := <-s.downs:
		return m, ok
	case <-time.After(patience):
		s.t.Fatalf("no message from the plugin in %v (calls not ended: %v)", patience, s.pending(nil))
		return nil, false
	}
}

// send sends frames in one SessionUp.
func (s *session) send(frames ...*pluginv1.CallFrame) {
	s.t.Helper()
	for _, f := range frames {
		if f.GetOp() != pluginv1.Op_OP_CANCEL {
			s.sent[f.GetId()] = true
		}
	}
	if err := s.st.Send(&pluginv1.SessionUp{Frames: frames}); err != nil {
		s.t.Fatalf("send %v: %v", frames, err)
	}
}

// take sorts the frames of m by call.
func (s *session) take(m *pluginv1.SessionDown) {
	s.t.Helper()
	s.msgs = append(s.msgs, m)
	if len(m.GetFrames()) == 0 {
		s.t.Errorf("a message without frames after the first: %v", m)
	}
	for _, f := range m.GetFrames() {
		id := f.GetId()
		switch {
		case !s.sent[id]:
			s.t.Errorf("frame for call %d, which was never sent: %v", id, f)
		case s.ended[id]:
			s.t.Errorf("frame for call %d after the frame that ended it: %v", id, f)
		}
		s.frames[id] = append(s.frames[id], f)
		if ends(f) {
			s.ended[id] = true
		}
	}
}

// pending returns the calls of ids (every call sent when ids is nil) not
// ended yet.
func (s *session) pending(ids []uint64) []uint64 {
	if ids == nil {
		for id := range s.sent {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	var p []uint64
	for _, id := range ids {
		if !s.ended[id] {
			p = append(p, id)
		}
	}
	return p
}

// await receives until every call of ids has ended and returns the frames
// of each.
func (s *session) await(ids ...uint64) map[uint64][]*pluginv1.ReplyFrame {
	s.t.Helper()
	for len(s.pending(ids)) > 0 {
		m, ok := s.next()
		if !ok {
			s.t.Fatalf("the session ended (%v) before calls %v ended", s.end, s.pending(ids))
		}
		s.take(m)
	}
	got := map[uint64][]*pluginv1.ReplyFrame{}
	for _, id := range ids {
		got[id] = s.frames[id]
	}
	return got
}

// ends tells whether f is the frame that ends its call.
func ends(f *pluginv1.ReplyFrame) bool {
	switch r := f.GetReply().(type) {
	case nil:
		return false
	case *pluginv1.ReplyFrame_Event:
		return r.Event.GetResult() != nil
	default:
		return true
	}
}

func stepRequest(node, config string) *pluginv1.StepRequest {
	return &pluginv1.StepRequest{NodeId: node, Attempt: 1, ConfigJson: []byte(config)}
}

func restoreFrame(id uint64, node, do string) *pluginv1.CallFrame {
	return &pluginv1.CallFrame{Id: id, Op: pluginv1.Op_OP_RESTORE, Request: stepRequest(node, `{"do":"`+do+`"}`)}
}

func cancelFrame(id uint64) *pluginv1.CallFrame {
	return &pluginv1.CallFrame{Id: id, Op: pluginv1.Op_OP_CANCEL}
}

// wantError checks that frames end with an error frame of code.
func wantError(t *testing.T, what string, frames []*pluginv1.ReplyFrame, code codes.Code) {
	t.Helper()
	if len(frames) == 0 {
		t.Errorf("%s: no frames, want an error %s", what, code)
		return
	}
	e := frames[len(frames)-1].GetError()
	if e == nil || codes.Code(e.GetCode()) != code || e.GetMessage() == "" {
		t.Errorf("%s: last frame %v, want an error %s with a message", what, frames[len(frames)-1], code)
	}
}

// wantResult checks that frames are Restore events ending with a result of st.
func wantResult(t *testing.T, what string, frames []*pluginv1.ReplyFrame, st pluginv1.Status) *pluginv1.StepResult {
	t.Helper()
	for i, f := range frames {
		if f.GetEvent() == nil {
			t.Errorf("%s: frame %d is %v, want a Restore event", what, i, f)
		}
	}
	if len(frames) == 0 {
		t.Errorf("%s: no frames, want a result %s", what, st)
		return nil
	}
	res := frames[len(frames)-1].GetEvent().GetResult()
	if res.GetStatus() != st {
		t.Errorf("%s: last frame %v, want a result %s", what, frames[len(frames)-1], st)
	}
	return res
}

// waitStarted waits until every node of nodes has told started.
func waitStarted(t *testing.T, started <-chan string, nodes ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, n := range nodes {
		left[n] = true
	}
	timeout := time.After(patience)
	for len(left) > 0 {
		select {
		case n := <-started:
			delete(left, n)
		case <-timeout:
			t.Fatalf("Restore of %v not started in %v", left, patience)
		}
	}
}

// signalling is scripted, and tells started the node of every "hang"
// Restore once it runs.
type signalling struct {
	scripted
	started chan string
}

func (p signalling) Restore(ctx context.Context, req *Request, s *Stream) error {
	if req.Config["do"] == "hang" {
		select {
		case p.started <- req.NodeID:
		case <-ctx.Done():
		}
	}
	return p.scripted.Restore(ctx, req, s)
}

// chatty logs `lines` lines of `size` bytes each ("aaa…", "bbb…", …), all
// built before the first is logged, and then tells logged (if it has room).
type chatty struct {
	scripted
	logged chan struct{}
}

func (p chatty) Restore(_ context.Context, req *Request, s *Stream) error {
	var cfg struct{ Lines, Size int }
	if err := json.Unmarshal(req.ConfigJSON, &cfg); err != nil {
		return err
	}
	lines := make([]string, cfg.Lines)
	for i := range lines {
		lines[i] = strings.Repeat(string(rune('a'+i)), cfg.Size)
	}
	for _, l := range lines {
		s.Log(LevelInfo, l)
	}
	select { // the test waits for one call only
	case p.logged <- struct{}{}:
	default:
	}
	s.SetMessage(fmt.Sprintf("logged %d lines", len(lines)))
	return nil
}
