package graphs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the units a graph file's durations may use: Go's
// (ms, s, m, h) plus d (24h) and w (7d), since a rebuild is counted in days
// and weeks. Hospital estimates read "3d", "1w2d", "1h30m", "45s".
var durationUnits = map[string]float64{
	"ms": float64(time.Millisecond),
	"s":  float64(time.Second),
	"m":  float64(time.Minute),
	"h":  float64(time.Hour),
	"d":  float64(24 * time.Hour),
	"w":  float64(7 * 24 * time.Hour),
}

// durationHelp says what a duration field allows, for messages.
const durationHelp = `want a duration such as "45s", "30m", "1h30m", "2d" or "1w"; units ms, s, m, h, d, w`

// ParseDuration parses a graph file duration: one or more number+unit
// pairs ("1h30m", "2.5d"), units ms, s, m, h, d, w. Negative values are
// refused; "0" alone means zero.
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	rest := s
	var total float64
	for rest != "" {
		i := 0
		for i < len(rest) && (isDigit(rest[i]) || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		num, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || strings.Count(rest[:i], ".") > 1 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		unit, ok := durationUnits[rest[:j]]
		if !ok {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		rest = rest[j:]
		total += num * unit
	}
	if total >= math.MaxInt64 {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(total), nil
}

// FormatDuration writes d with the units ParseDuration reads, rounded to the
// second: "2d4h", "1h30m", "45s", "0s".
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.size
		}
	}
	return b.String()
}
