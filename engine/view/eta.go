package view

import (
	"fmt"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Estimate is the time left for the nodes not done, the one ETA every view
// shows (status, report, the live progress bar): the longest of the
// critical path through them, their total work over the parallelism, and
// for each plugin with a max_parallel, its nodes' work over its cap. A
// node's weight is its estimate, or the mean measured time of the steps
// that succeeded; a running node counts what is left of it at now.
// recs are the run's node records (any order; those not in g are
// ignored); parallelism 0 means DefaultParallelism. Cost: O(V+E).
func Estimate(g *graphs.Graph, a *graphs.Analysis, recs []state.NodeRecord, parallelism int, now time.Time) time.Duration {
	if parallelism <= 0 {
		parallelism = DefaultParallelism
	}
	byIdx := make([]*state.NodeRecord, len(g.Nodes))
	var measured time.Duration
	var measuredN int
	for k := range recs {
		rec := &recs[k]
		// A run's records are in graph order: the map lookup is only for
		// those that are not (a graph edited on resume).
		if k < len(g.Nodes) && g.Nodes[k].ID == rec.ID {
			byIdx[k] = rec
		} else if i, ok := g.Index(rec.ID); ok {
			byIdx[i] = rec
		}
		if rec.State == state.NodeSucceeded && !rec.Started.IsZero() && rec.Ended.After(rec.Started) && rec.ApprovedBy == "" && rec.MarkedBy == "" {
			measured += rec.Ended.Sub(rec.Started)
			measuredN++
		}
	}
	var mean time.Duration
	if measuredN > 0 {
		mean = measured / time.Duration(measuredN)
	}
	w := make([]time.Duration, len(g.Nodes))
	var total time.Duration
	capped := map[string]time.Duration{} // work left by plugin with a max_parallel
	todo := 0
	for i, n := range g.Nodes {
		rec := byIdx[i]
		if rec != nil && rec.State.Done() {
			continue
		}
		d := n.Estimate
		if d == 0 {
			d = mean
		}
		if rec != nil && rec.State == state.NodeRunning && !rec.Started.IsZero() {
			d = max(0, d-now.Sub(rec.Started))
		}
		w[i] = d
		total += d
		if len(g.Plugins) > 0 && g.Plugins[n.Plugin].MaxParallel > 0 {
			capped[n.Plugin] += d
		}
		todo++
	}
	if todo == 0 {
		return 0
	}
	path := make([]time.Duration, len(g.Nodes))
	var longest time.Duration
	for k := len(a.Order) - 1; k >= 0; k-- {
		i := a.Order[k]
		var best time.Duration
		for _, d := range a.Dependents[i] {
			best = max(best, path[d])
		}
		path[i] = w[i] + best
		longest = max(longest, path[i])
	}
	left := max(longest, total/time.Duration(min(parallelism, todo)))
	for p, d := range capped {
		left = max(left, d/time.Duration(g.Plugins[p].MaxParallel))
	}
	return left.Round(time.Second)
}

// FormatDuration writes a duration the way a crisis cell says it, the one
// format of times and ETAs on every screen: 2.1s, 4m05s, 3h12m, 2d04h.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
