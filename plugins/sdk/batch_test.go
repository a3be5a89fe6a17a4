package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// setExpectWait sets how long the outbox waits for calls that came
// together, for one test.
func setExpectWait(t *testing.T, d time.Duration) {
	old := expectWait.Swap(int64(d))
	t.Cleanup(func() { expectWait.Store(old) })
}

// staggered is a plugin whose Restore sleeps `with.ms` milliseconds, logs
// a line and succeeds.
type staggered struct{ scripted }

func (staggered) Restore(ctx context.Context, req *Request, s *Stream) error {
	var cfg struct{ MS int }
	if err := json.Unmarshal(req.ConfigJSON, &cfg); err != nil {
		return err
	}
	select {
	case <-time.After(time.Duration(cfg.MS) * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.Logf("slept %d ms", cfg.MS)
	return nil
}

// TestSessionAnswersTogether: the calls that come in one message answer in
// one message (their events included) when they end within expectWait of
// each other: the writer waits for every call of the message to answer.
// Here they end 1 ms apart and expectWait is made long, so that without
// the wait they would answer in up to 8 messages.
func TestSessionAnswersTogether(t *testing.T) {
	setExpectWait(t, patience)
	c := pair(t, staggered{})
	s := openSession(t, c)
	var frames []*pluginv1.CallFrame
	var ids []uint64
	for i := range 8 {
		id := uint64(i + 1)
		frames = append(frames, &pluginv1.CallFrame{Id: id, Op: pluginv1.Op_OP_RESTORE,
			Request: stepRequest(fmt.Sprintf("node-%d", i), fmt.Sprintf(`{"ms":%d}`, 1+i))})
		ids = append(ids, id)
	}
	s.send(frames...)
	got := s.await(ids...)
	for _, id := range ids {
		wantResult(t, fmt.Sprintf("call %d", id), got[id], pluginv1.Status_STATUS_SUCCEEDED)
	}
	if len(s.msgs) != 1 {
		t.Errorf("8 calls sent together and ending 1 ms apart answered in %d messages, want 1", len(s.msgs))
	}
}

// TestSessionLongCallDoesNotHoldOthers: a call that does not end does not
// keep the answers of the calls that came with it: they leave once
// expectWait has passed.
func TestSessionLongCallDoesNotHoldOthers(t *testing.T) {
	setExpectWait(t, 20*time.Millisecond)
	c := pair(t, scripted{})
	s := openSession(t, c)
	s.send(restoreFrame(1, "slow", "hang"), restoreFrame(2, "a", "ok"), restoreFrame(3, "b", "ok"))
	got := s.await(2, 3) // fails after patience if the hanging call held them
	wantResult(t, "call 2", got[2], pluginv1.Status_STATUS_SUCCEEDED)
	wantResult(t, "call 3", got[3], pluginv1.Status_STATUS_SUCCEEDED)
	if s.ended[1] {
		t.Fatalf("the hanging call ended on its own: %v", s.frames[1])
	}
	s.send(cancelFrame(1))
	s.await(1)
}
