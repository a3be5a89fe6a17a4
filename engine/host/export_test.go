package host

import (
	"context"
	"time"
)

// UsesSession reports whether plugin name's running process is called
// through a Session stream (false: one RPC per call). It starts the plugin.
func UsesSession(ctx context.Context, h *Host, name string) (bool, error) {
	p, err := h.get(ctx, name)
	if err != nil {
		return false, err
	}
	return p.sess != nil, nil
}

// SessionSent returns how many messages, and frames in them, the session
// of plugin name's running process has sent. It starts the plugin.
func SessionSent(ctx context.Context, h *Host, name string) (messages, frames int64, err error) {
	p, err := h.get(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	return p.sess.stats.sent.Load(), p.sess.stats.sentFrames.Load(), nil
}

// SetExpectWait sets how long a session's writer waits for announced
// calls; it returns the previous value's restorer.
func SetExpectWait(d time.Duration) (restore func()) {
	old := expectWait.Swap(int64(d))
	return func() { expectWait.Store(old) }
}

// Started reports how many plugin processes h has started or is starting.
func Started(h *Host) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.procs)
}
