package engine

import (
	"testing"
	"time"
)

// Short steps arm up to armAhead nodes per slot ahead of free slots, fewer
// as steps lengthen (an armed node waits about armWait at most), none
// before enough steps were measured or once steps are long.
func TestArmAhead(t *testing.T) {
	tests := []struct {
		name     string
		measured int
		mean     time.Duration
		want     int // per slot
	}{
		{"not measured yet", 7, time.Millisecond, 0},
		{"noop steps", 100, 300 * time.Microsecond, 16},
		{"3 ms commands", 100, 3 * time.Millisecond, 16},
		{"5 ms", 100, 5 * time.Millisecond, 10},
		{"10 ms", 100, 10 * time.Millisecond, 5},
		{"19 ms", 100, 19 * time.Millisecond, 2},
		{"long steps", 100, 20 * time.Millisecond, 0},
		{"instant", 100, 0, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &runner{e: &Engine{opts: Options{Parallelism: 8}}, measuredN: tt.measured,
				measured: tt.mean * time.Duration(tt.measured)}
			if got := r.ahead(); got != tt.want*8 {
				t.Errorf("ahead() = %d, want %d (%d a slot)", got, tt.want*8, tt.want)
			}
		})
	}
}
