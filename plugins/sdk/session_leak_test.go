package sdk

import (
	"context"
	"io"
	"runtime"
	"testing"

	"google.golang.org/grpc"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// fakeSession is the server side of a Session without gRPC: Recv serves ups,
// Send counts the frames that end a call.
type fakeSession struct {
	grpc.ServerStream
	ctx   context.Context
	ups   chan *pluginv1.SessionUp
	ended chan struct{}
}

func (f *fakeSession) Context() context.Context { return f.ctx }
func (f *fakeSession) Recv() (*pluginv1.SessionUp, error) {
	up, ok := <-f.ups
	if !ok {
		return nil, io.EOF
	}
	return up, nil
}
func (f *fakeSession) Send(m *pluginv1.SessionDown) error {
	for range m.GetFrames() {
		f.ended <- struct{}{}
	}
	return nil
}

// heapPerCall runs n Verify calls (timeout_micros as given) through one
// session and returns the heap kept per call while the session is still open.
func heapPerCall(t *testing.T, n int, timeoutMicros int64) float64 {
	s := newServer(capable{})
	f := &fakeSession{ctx: context.Background(), ups: make(chan *pluginv1.SessionUp), ended: make(chan struct{}, 64)}
	done := make(chan error, 1)
	go func() { done <- s.Session(f) }()
	// warm up
	send := func(from, to int) {
		for i := from; i < to; i++ {
			f.ups <- &pluginv1.SessionUp{Frames: []*pluginv1.CallFrame{{Id: uint64(i), Op: pluginv1.Op_OP_VERIFY,
				Request: &pluginv1.StepRequest{ConfigJson: []byte(`{"healthy":true}`)}, TimeoutMicros: timeoutMicros}}}
			<-f.ended
		}
	}
	send(0, 1000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	send(1000, 1000+n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	close(f.ups)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// TestSessionTimedCallsDoNotLeak: a session lives as long as the plugin
// process and the host sets timeout_micros on every call with a deadline;
// a finished call must not keep memory for the rest of the session.
func TestSessionTimedCallsDoNotLeak(t *testing.T) {
	const n = 20000
	untimed := heapPerCall(t, n, 0)
	timed := heapPerCall(t, n, 3_600_000_000)
	t.Logf("heap kept per call: %.1f bytes untimed, %.1f bytes with timeout_micros", untimed, timed)
	if timed > 32 {
		t.Errorf("every call with timeout_micros keeps %.0f bytes until the session ends (untimed: %.0f)", timed, untimed)
	}
}
