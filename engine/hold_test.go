package engine

import (
	"testing"
	"time"
)

// A commit waits for the steps in flight only when steps are short and
// the work started (in flight and armed) should end within one commit's
// time; never when nothing runs, while the run stops, or before steps
// and commits were measured; and never past one commit's time.
func TestHoldRules(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name               string
		inflight, armed    int
		step, commit       time.Duration
		stopping, wantHold bool
	}{
		{"noop steps, one wave in flight", 8, 0, 500 * time.Microsecond, 3 * ms, false, true},
		{"noop steps, a few armed", 8, 16, 500 * time.Microsecond, 3 * ms, false, true},
		{"too much armed to wait for", 8, 64, 500 * time.Microsecond, 3 * ms, false, false},
		{"nothing in flight", 0, 0, 500 * time.Microsecond, 3 * ms, false, false},
		{"long steps", 8, 0, 30 * ms, 300 * ms, false, false},
		{"steps not measured yet", 8, 0, 0, 3 * ms, false, false},
		{"commits not measured yet", 8, 0, 500 * time.Microsecond, 0, false, false},
		{"the run stops", 8, 0, 500 * time.Microsecond, 3 * ms, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &runner{e: &Engine{opts: Options{Parallelism: 8}}, inflight: tt.inflight,
				armed: make([]int, tt.armed), stepTime: tt.step, commitTime: tt.commit, stopping: tt.stopping}
			before := time.Now()
			got := r.hold()
			after := time.Now()
			if got != tt.wantHold {
				t.Fatalf("hold() = %v, want %v", got, tt.wantHold)
			}
			if !tt.wantHold {
				return
			}
			if r.holdUntil.Before(before.Add(tt.commit)) || r.holdUntil.After(after.Add(tt.commit)) {
				t.Fatalf("the hold lasts until %v, want one commit's time (%v) after it began (%v)", r.holdUntil, tt.commit, before)
			}
			if r.holdDone() == nil {
				t.Fatal("holdDone() is nil while holding")
			}
			// Still within the hold, however slow the machine (a commit's
			// time here is 3 ms: a loaded machine under -race may take that
			// between two calls).
			r.holdUntil = time.Now().Add(time.Hour)
			if !r.hold() {
				t.Fatal("a hold ended before its time")
			}
			r.holdUntil = time.Now().Add(-time.Microsecond)
			if r.hold() {
				t.Fatal("hold() = true past one commit's time")
			}
			if r.holdDone() != nil {
				t.Fatal("holdDone() is not nil after the hold")
			}
		})
	}
}
