package main

import (
	"os"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/notify"
)

// notifyHook passes a run's events to the progress display and to the
// graph's notify targets (internal/notify), which never hold the run up.
type notifyHook struct {
	next func(engine.Event)
	w    *notify.Watcher
}

// watchNotify starts watching the run's events for notifications.
// REPRISE_NOTIFY_RETRY_FOR, REPRISE_NOTIFY_FIRST_DELAY and
// REPRISE_NOTIFY_DEADLINE_EVERY (durations) tune it for tests and drills.
func watchNotify(st state.Backend, next func(engine.Event)) *notifyHook {
	opts := notify.WatchOptions{}
	opts.RetryFor = envDuration("REPRISE_NOTIFY_RETRY_FOR")
	opts.FirstDelay = envDuration("REPRISE_NOTIFY_FIRST_DELAY")
	opts.DeadlineEvery = envDuration("REPRISE_NOTIFY_DEADLINE_EVERY")
	opts.Grace = envDuration("REPRISE_NOTIFY_GRACE")
	return &notifyHook{next: next, w: notify.Watch(st, opts)}
}

func envDuration(k string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(k))
	return d
}

func (h *notifyHook) onEvent(ev engine.Event) {
	if h.next != nil {
		h.next(ev)
	}
	h.w.OnEvent(ev)
}

func (h *notifyHook) close() {
	if h != nil {
		h.w.Close()
	}
}
