package host_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// TestExpectSendsTogether: calls announced with Expect leave in one
// message even when they reach the host apart (here 1 ms apart, with the
// writer's wait made long so that a loaded machine cannot split them);
// unannounced, the same calls leave about one message each.
func TestExpectSendsTogether(t *testing.T) {
	defer host.SetExpectWait(10 * time.Second)()
	h := host.New(host.Options{BuiltinCommand: hosttest.BuiltinCommand})
	defer h.Close()
	ctx := context.Background()
	r := req("noop", "milestone", nil)
	if _, err := h.Restore(ctx, r, nil); err != nil { // start the process
		t.Fatal(err)
	}
	calls := func(announce bool) (messages, frames int64) {
		m0, f0, err := host.SessionSent(ctx, h, "noop")
		if err != nil {
			t.Fatal(err)
		}
		if announce {
			h.Expect("noop", 8)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * time.Millisecond)
				if _, err := h.Restore(ctx, r, nil); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		m1, f1, _ := host.SessionSent(ctx, h, "noop")
		return m1 - m0, f1 - f0
	}
	if m, f := calls(true); m != 1 || f != 8 {
		t.Errorf("8 announced calls: %d frames in %d messages, want 8 in 1", f, m)
	}
	m, f := calls(false)
	if f != 8 {
		t.Errorf("8 calls, not announced: %d frames sent, want 8", f)
	}
	t.Logf("8 calls 1 ms apart, not announced: %d messages", m) // one each, unless the machine is loaded
}
