package cluster

import (
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Results wait for their peers. A call's result does not go to the engine
// at once while calls sent within waveHold of it (before or after) are
// still in flight: it waits for them, waveHold at most. Calls sent
// together are the steps the engine started together; answered together,
// the engine records them, and starts the steps they allow, in one commit,
// and those steps go together again. Answered one agent at a time, a dependency level splits
// into waves that each cost a commit, an offer and a result transaction,
// and never merge again. On real steps (seconds to hours) the wait is
// nothing; on a run of short steps it keeps the levels in step. 60 ms: a
// level cut by its first steps (an agent whose plugin started later) is
// about one level's period apart, 25–30 ms of 10,000 noop steps on two
// cores; 30 ms merged it only some runs, and a cut level stayed cut.
const waveHold = 60 * time.Millisecond

// answered is a call's result waiting for the engine.
type answered struct {
	c     *call
	r     Result
	sent  time.Time
	until time.Time // it goes then at the latest
}

// answerLocked takes c's result: it goes now (returned, an adopted
// call's) or waits for its peers; the caller calls dueLocked after the
// last result it takes (once for a watch response's results, not once
// each: dueLocked sorts the calls in flight).
func (rw *runWork) answerLocked(c *call, r Result) []answered {
	if c.sent.IsZero() {
		return []answered{{c: c, r: r}}
	}
	rw.waiting = append(rw.waiting, answered{c: c, r: r, sent: c.sent, until: time.Now().Add(waveHold)})
	return nil
}

// dueLocked returns the waiting results that may go now: no call in
// flight was sent within waveHold after them, or they waited long enough;
// it sets the timer for the others.
func (rw *runWork) dueLocked() []answered {
	if len(rw.waiting) == 0 {
		return nil
	}
	sent := make([]time.Time, 0, len(rw.calls))
	for _, c := range rw.calls {
		if !c.sent.IsZero() {
			sent = append(sent, c.sent)
		}
	}
	slices.SortFunc(sent, time.Time.Compare)
	// peer tells whether a call in flight was sent within waveHold of t.
	peer := func(t time.Time) bool {
		i, _ := slices.BinarySearchFunc(sent, t.Add(-waveHold), time.Time.Compare)
		return i < len(sent) && !sent[i].After(t.Add(waveHold))
	}
	now := time.Now()
	var out []answered
	kept := rw.waiting[:0]
	var next time.Time
	for _, a := range rw.waiting {
		if !peer(a.sent) || !now.Before(a.until) {
			out = append(out, a)
			continue
		}
		kept = append(kept, a)
		if next.IsZero() || a.until.Before(next) {
			next = a.until
		}
	}
	rw.waiting = kept
	if !next.IsZero() {
		d := time.Until(next)
		if rw.waveTimer == nil {
			rw.waveTimer = time.AfterFunc(d, func() {
				rw.mu.Lock()
				out := rw.dueLocked()
				rw.mu.Unlock()
				rw.hand(out)
			})
		} else {
			rw.waveTimer.Reset(d)
		}
	}
	return out
}

// hand gives the results to the calls waiting for them.
func (rw *runWork) hand(out []answered) {
	d := rw.d
	for _, a := range out {
		c, r := a.c, a.r
		trace(c.node, "answered")
		if c.offerKey == "" || c.evs {
			d.w.cleanUp(rw.run+"/"+c.node, clientv3.OpDelete(d.k.Node(rw.run, c.node), clientv3.WithPrefix()))
		}
		rw.mu.Lock()
		onEvent, pre, abandoned := c.onEvent, c.pre, c.abandoned
		c.handed = !abandoned
		rw.mu.Unlock()
		if abandoned {
			continue // its caller gave up (withdrawn)
		}
		d.arriving.Add(1) // until its caller takes it (wait)
		if onEvent != nil {
			for _, w := range r.Events {
				onEvent(w.event())
			}
		}
		if !pre {
			r.Events = nil // else given when the call joins
		}
		c.done <- r
	}
}

// Arriving reports how many results the dispatcher has handed to their
// calls that have not yet returned to the engine (the engine's arriver): a
// level's results are handed at once, and the engine waits for those on
// their way before it commits, so that they go in one commit (and the
// steps they allow start together) instead of being cut by the first
// commit into waves that never merge again.
func (d *Dispatcher) Arriving() int { return int(d.arriving.Load()) }
