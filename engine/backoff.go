package engine

import (
	"math/rand/v2"
	"time"
)

// maxBackoffFactor caps the exponential growth of retry delays: at most 16
// times the graph's retry_delay before jitter.
const maxBackoffFactor = 16

// backoff is the delay before attempt n+1 after n failed attempts: base
// doubled for each failure after the first, capped, with ±20 % jitter so
// that nodes failing together (a shared dependency down) do not retry in
// lockstep.
func backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	factor := 1
	for k := 1; k < n && factor < maxBackoffFactor; k++ {
		factor *= 2
	}
	d := base * time.Duration(factor)
	jitter := (rand.Float64()*0.4 - 0.2) * float64(d)
	return d + time.Duration(jitter)
}
