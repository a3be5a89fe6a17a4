package report

import (
	"fmt"
	"sort"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// Sizes of the timeline drawing, in SVG user units.
const (
	tLabelW = 190 // node names
	tChartW = 860 // the time axis
	tRightW = 70  // each node's total time
	tRowH   = 18
	tBarH   = 12
	tTop    = 34 // room for the axis labels
	tBottom = 8
)

// timelineView is a Gantt chart: one row per node that was tried, one bar
// per attempt, coloured by its result, with operator decisions as diamonds.
type timelineView struct {
	Width, Height int
	Rows          []timelineRow
	Ticks         []tick
	Markers       []marker
	AxisX1        int
	AxisX2        int
	Zone          string
	NotStarted    int // nodes without any attempt (not drawn)
}

type timelineRow struct {
	Label, Tip, Took string
	Y, TY            int
	Stripe           bool
	Bars             []bar
}

type bar struct {
	X, Y, W, H int
	Result     string
	Tip        string
}

type tick struct {
	X, Y1, Y2, TY int
	Label         string
}

type marker struct {
	Path, Tip string
}

// layoutTimeline draws rows in the order nodes first started (ties: wave,
// then id).
func (r *Report) layoutTimeline() timelineView {
	var rows []Node
	v := timelineView{Zone: r.loc.String()}
	for _, n := range r.Nodes {
		if len(n.Attempts) == 0 {
			v.NotStarted++
			continue
		}
		rows = append(rows, n)
	}
	sort.SliceStable(rows, func(a, b int) bool {
		if !rows[a].Started.Equal(rows[b].Started) {
			return rows[a].Started.Before(rows[b].Started)
		}
		if rows[a].Wave != rows[b].Wave {
			return rows[a].Wave < rows[b].Wave
		}
		return rows[a].ID < rows[b].ID
	})
	start, end := r.Run.Start, r.Run.End
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	total := end.Sub(start)
	x := func(t time.Time) int {
		if t.Before(start) {
			t = start
		}
		return tLabelW + int(float64(tChartW)*float64(t.Sub(start))/float64(total))
	}
	v.Width = tLabelW + tChartW + tRightW
	v.Height = tTop + len(rows)*tRowH + tBottom
	v.AxisX1, v.AxisX2 = tLabelW, tLabelW+tChartW
	rowOf := map[string]int{}
	for k, n := range rows {
		y := tTop + k*tRowH
		rowOf[n.ID] = y
		row := timelineRow{Label: truncate(n.ID, 26), Tip: tip(n), Y: y, TY: y + tRowH/2 + 4, Stripe: k%2 == 1}
		var took time.Duration
		for _, a := range n.Attempts {
			e := a.end
			took += e.Sub(a.Started)
			w := max(x(e)-x(a.Started), 2)
			tipText := fmt.Sprintf("%s attempt %d: %s\n%s → %s (%s)", n.ID, a.N, a.Result,
				r.clock(a.Started), r.clock(e), humanDuration(e.Sub(a.Started)))
			if a.Error != "" {
				tipText += "\n" + truncate(a.Error, 300)
			}
			row.Bars = append(row.Bars, bar{X: x(a.Started), Y: y + (tRowH-tBarH)/2, W: w, H: tBarH,
				Result: barClass(a.Result), Tip: tipText})
		}
		row.Took = humanDuration(took)
		v.Rows = append(v.Rows, row)
	}
	step := tickStep(total)
	first := start.Truncate(step)
	if first.Before(start) {
		first = first.Add(step)
	}
	// Truncate works on absolute time; for steps of a day or more align
	// the ticks on local midnight instead.
	if step >= 24*time.Hour {
		s := start.In(r.loc)
		first = time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, r.loc)
		for first.Before(start) {
			first = first.Add(step)
		}
	}
	for t := first; !t.After(end); t = t.Add(step) {
		v.Ticks = append(v.Ticks, tick{X: x(t), Y1: tTop - 4, Y2: v.Height - tBottom, TY: tTop - 10,
			Label: r.tickLabel(t, step, total)})
	}
	for _, d := range r.Decisions {
		y, ok := rowOf[d.NodeID]
		if !ok || d.At.IsZero() {
			continue
		}
		cx, cy := x(d.At), y+tRowH/2
		v.Markers = append(v.Markers, marker{
			Path: fmt.Sprintf("M%d %d L%d %d L%d %d L%d %d Z", cx, cy-6, cx+5, cy, cx, cy+6, cx-5, cy),
			Tip:  fmt.Sprintf("%s by %s at %s: %s", d.Type, d.By, r.clock(d.At), d.Reason),
		})
	}
	return v
}

// barClass maps an attempt result to a style; unknown results look neutral.
func barClass(result string) string {
	switch state.NodeState(result) {
	case state.NodeSucceeded, state.NodeFailed, state.NodeWaiting, state.NodeRunning, state.NodeSkipped:
		return result
	}
	return "other"
}

// tickSteps are the axis steps a reader can count with.
var tickSteps = []time.Duration{
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// tickStep picks the smallest step that draws at most 10 ticks over total.
func tickStep(total time.Duration) time.Duration {
	for _, s := range tickSteps {
		if total/s <= 10 {
			return s
		}
	}
	return tickSteps[len(tickSteps)-1] * time.Duration(total/(10*tickSteps[len(tickSteps)-1])+1)
}

func (r *Report) tickLabel(t time.Time, step, total time.Duration) string {
	t = t.In(r.loc)
	switch {
	case step >= 24*time.Hour:
		return t.Format("02 Jan")
	case total >= 24*time.Hour:
		return t.Format("02 Jan 15:04")
	case step >= time.Minute:
		return t.Format("15:04")
	case step >= time.Second:
		return t.Format("15:04:05")
	default:
		return t.Format("15:04:05.0")
	}
}

// clock formats a time for people in the report's zone.
func (r *Report) clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(r.loc).Format("2006-01-02 15:04:05")
}

// humanDuration writes a duration in the one format of every view
// (view.FormatDuration): 2.1s, 4m05s, 3h12m, 2d04h.
func humanDuration(d time.Duration) string { return view.FormatDuration(d) }
