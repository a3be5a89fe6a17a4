package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// progressSink shows a run's events as they happen, on stderr. Event is
// called from one goroutine at a time (the engine's OnEvent contract);
// Close is called once, after the last event, and returns when everything
// is written.
type progressSink interface {
	Event(engine.Event)
	Close()
}

// newProgress returns the live display for a run: bars with counts,
// running nodes and ETA when w is a terminal, one plain line per event
// otherwise (CI, logs, a pipe).
func newProgress(w io.Writer, tty bool) progressSink {
	if tty {
		return newBarProgress(w, nil, time.Now)
	}
	return &plainProgress{w: w, started: map[string]time.Time{}}
}

// doneCount is how many nodes need nothing more from the engine right now:
// every node that is not pending, running or waiting for approval.
func doneCount(ev engine.Event) int {
	if ev.Counts == nil {
		return 0
	}
	return ev.Total - ev.Counts[state.NodePending] - ev.Counts[state.NodeRunning] - ev.Counts[state.NodeWaiting]
}

// shortDuration writes a duration for a progress line, in the one format
// of every view (view.FormatDuration): 2.1s, 4m05s, 3h12m, 2d04h.
func shortDuration(d time.Duration) string { return view.FormatDuration(d) }

// plainProgress writes one line per event:
//
//	12:03:04 [ 12/84] succeeded pacs (attempt 1, 2.1s)
type plainProgress struct {
	w       io.Writer
	started map[string]time.Time // node → start of its current attempt
	last    engine.Event         // the last event that carried counts
}

func (p *plainProgress) Event(ev engine.Event) {
	if ev.Counts != nil {
		p.last = ev
	} else { // a log line or progress without counts: show the last known
		ev.Counts, ev.Total = p.last.Counts, max(ev.Total, p.last.Total)
	}
	line := plainLine(ev, p.started)
	if line == "" {
		return
	}
	width := max(3, len(strconv.Itoa(ev.Total)))
	fmt.Fprintf(p.w, "%s [%*d/%d] %s\n", ev.Time.Format("15:04:05"), width, doneCount(ev), ev.Total, line)
}

func (p *plainProgress) Close() {}

// plainLine says what an event means, or "" for events not worth a line
// (progress percentages).
func plainLine(ev engine.Event, started map[string]time.Time) string {
	withMsg := func(s string) string {
		if ev.Message != "" {
			return s + ": " + oneLine(ev.Message)
		}
		return s
	}
	switch ev.Type {
	case engine.EventRunStarted:
		if ev.Message != "" {
			return "started " + oneLine(ev.Message)
		}
		return fmt.Sprintf("started run %s, %d nodes", ev.RunID, ev.Total)
	case engine.EventNodeStarted:
		started[ev.NodeID] = ev.Time
		return fmt.Sprintf("started %s (attempt %d)", ev.NodeID, ev.Attempt)
	case engine.EventNodeLog:
		return withMsg("log " + ev.NodeID)
	case engine.EventNodeRetrying:
		return withMsg(fmt.Sprintf("retrying %s (attempt %d)", ev.NodeID, ev.Attempt))
	case engine.EventNodeFinished:
		detail := fmt.Sprintf("attempt %d", ev.Attempt)
		if t, ok := started[ev.NodeID]; ok {
			detail += ", " + shortDuration(ev.Time.Sub(t))
			delete(started, ev.NodeID)
		}
		s := fmt.Sprintf("%s %s", ev.State, ev.NodeID)
		if ev.Attempt > 0 {
			s += " (" + detail + ")"
		}
		if ev.State == state.NodeSucceeded && ev.Message == "" {
			return s
		}
		if ev.State == state.NodeWaiting && ev.Message == "" {
			return fmt.Sprintf("%s: approve with `reprise approve %s %s`", s, ev.RunID, ev.NodeID)
		}
		return withMsg(s)
	case engine.EventNodeApproved:
		return withMsg("approved " + ev.NodeID)
	case engine.EventNodeOverruled:
		return withMsg("marked done " + ev.NodeID)
	case engine.EventRunPausing:
		return withMsg("pausing: nothing new starts, running steps finish (interrupt again to cancel them)")
	case engine.EventRunFinished:
		return withMsg(fmt.Sprintf("run %s finished (%s)", ev.RunID, countsText(ev.Counts, false)))
	}
	return ""
}

// oneLine keeps a message on one line: its non-blank lines joined with
// " | ", cut at 300 characters.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	s = strings.Join(parts, " | ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:299]) + "…"
	}
	return s
}

// countStates are the states a progress line counts, with their symbols.
var countStates = []struct {
	s     state.NodeState
	glyph string
}{
	{state.NodeSucceeded, "✓"}, {state.NodeFailed, "✗"}, {state.NodeBlocked, "⊘"},
	{state.NodeWaiting, "‖"}, {state.NodeRunning, "▶"}, {state.NodePending, "·"}, {state.NodeSkipped, "–"},
}

// countsText writes the non-zero counts: "12 succeeded, 1 failed", or with
// symbols for the bar "✓12 ✗1".
func countsText(counts map[state.NodeState]int, symbols bool) string {
	var parts []string
	for _, c := range countStates {
		n := counts[c.s]
		if n == 0 {
			continue
		}
		if symbols {
			parts = append(parts, fmt.Sprintf("%s%d", c.glyph, n))
		} else {
			parts = append(parts, fmt.Sprintf("%d %s", n, c.s))
		}
	}
	if len(parts) == 0 {
		return "no node"
	}
	if symbols {
		return strings.Join(parts, " ")
	}
	return strings.Join(parts, ", ")
}

// maxNodeBars caps the running nodes shown as their own bar; the others
// are counted on the total bar.
const maxNodeBars = 10

// barProgress is the terminal display: a total bar with counts by state and
// the ETA, one line per running node with its elapsed time, and the
// important events (failures, gates, approvals) printed above the bars.
type barProgress struct {
	p   *mpb.Progress
	now func() time.Time

	mu       sync.Mutex // guards what the decorators read
	last     engine.Event
	start    time.Time
	seen     bool // an event came: start is the run's first event
	finished bool // the run finished: no ETA any more
	total    *mpb.Bar
	running  map[string]*nodeBar
	hidden   int // running nodes without a bar of their own
	// finishedLine says the run finished; Close writes it below the final
	// bar.
	finishedLine string
	w            io.Writer
}

type nodeBar struct {
	bar     *mpb.Bar
	started time.Time
	attempt int
	percent float64
}

// newBarProgress draws on w; refresh, when not nil, renders on demand
// instead of on a timer (for tests), and now is the clock.
func newBarProgress(w io.Writer, refresh <-chan any, now func() time.Time) *barProgress {
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.ForceTTY(), mpb.WithWidth(100),
		mpb.WithRefreshRate(250 * time.Millisecond)}
	if refresh != nil {
		opts = append(opts, mpb.WithManualRefresh(refresh))
	} else {
		opts = append(opts, mpb.WithAutoRefresh()) // also when w is not an *os.File
	}
	b := &barProgress{p: mpb.New(opts...), now: now, start: now(), running: map[string]*nodeBar{}, w: w}
	b.total = b.p.New(0, mpb.BarStyle().Lbound("[").Filler("█").Tip("█").Padding("░").Rbound("]"),
		mpb.BarPriority(-1), // always on top
		mpb.PrependDecorators(decor.Any(b.head, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(b.tail)))
	return b
}

func (b *barProgress) head(decor.Statistics) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	width := max(3, len(strconv.Itoa(b.last.Total)))
	return fmt.Sprintf("%s [%*d/%d]", shortDuration(b.now().Sub(b.start)), width, doneCount(b.last), b.last.Total)
}

func (b *barProgress) tail(decor.Statistics) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := " " + countsText(b.last.Counts, true)
	switch {
	case b.finished:
	case b.last.ETA > 0:
		// The ETA of status: the same computation (view.Estimate, which
		// the engine's events carry) and the same format.
		s += " · ETA " + view.FormatDuration(b.last.ETA)
	default:
		s += " · ETA —"
	}
	if b.hidden > 0 {
		s += fmt.Sprintf(" · %d more running", b.hidden)
	}
	return s
}

func (b *barProgress) Event(ev engine.Event) {
	b.mu.Lock()
	if !b.seen { // the run's clock starts at its first event
		b.seen, b.start = true, ev.Time
	}
	if ev.Counts != nil { // log lines carry no counts: keep the last ones
		b.last.Counts, b.last.Total, b.last.ETA = ev.Counts, ev.Total, ev.ETA
	}
	b.finished = ev.Type == engine.EventRunFinished || (b.finished && ev.Type != engine.EventRunStarted)
	total, done := int64(b.last.Total), int64(doneCount(b.last))
	b.mu.Unlock()
	if total > 0 {
		b.total.SetTotal(total, false)
		b.total.SetCurrent(done)
	}
	switch ev.Type {
	case engine.EventNodeStarted:
		b.startNode(ev)
	case engine.EventNodeProgress:
		b.mu.Lock()
		if nb := b.running[ev.NodeID]; nb != nil {
			nb.percent = ev.Percent
		}
		b.mu.Unlock()
	case engine.EventNodeFinished:
		started := map[string]time.Time{}
		b.mu.Lock()
		if nb := b.running[ev.NodeID]; nb != nil {
			started[ev.NodeID] = nb.started
		}
		b.mu.Unlock()
		b.stopNode(ev.NodeID)
		if ev.State != state.NodeSucceeded && ev.State != state.NodeSkipped {
			b.above(ev, started)
		}
	case engine.EventRunFinished:
		// Said below the final bar, once Close has drawn it.
		b.mu.Lock()
		b.finishedLine = ev.Time.Format("15:04:05") + " " + plainLine(ev, map[string]time.Time{})
		b.mu.Unlock()
	case engine.EventNodeRetrying, engine.EventNodeApproved, engine.EventNodeOverruled,
		engine.EventRunPausing, engine.EventRunStarted:
		b.above(ev, nil)
	}
}

// above prints an event's plain line above the bars, where it stays: mpb
// clears the bars, writes the line and draws the bars again below it, at
// its next refresh.
func (b *barProgress) above(ev engine.Event, started map[string]time.Time) {
	if started == nil {
		started = map[string]time.Time{}
	}
	if line := plainLine(ev, started); line != "" {
		fmt.Fprintf(b.p, "%s %s\n", ev.Time.Format("15:04:05"), line)
	}
}

func (b *barProgress) startNode(ev engine.Event) {
	b.mu.Lock()
	if old := b.running[ev.NodeID]; old != nil { // a retry reuses the line
		old.started, old.attempt = ev.Time, ev.Attempt
		b.mu.Unlock()
		return
	}
	if len(b.running) >= maxNodeBars {
		b.hidden++
		b.mu.Unlock()
		return
	}
	nb := &nodeBar{started: ev.Time, attempt: ev.Attempt}
	id := ev.NodeID
	b.running[id] = nb
	b.mu.Unlock()
	// Not under b.mu: p.New waits for the render goroutine, whose
	// decorators (head, tail, the node's own) take b.mu.
	bar := b.p.New(100, mpb.SpinnerStyle().PositionLeft(), mpb.BarWidth(3), mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return "  ▶ " + id }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			b.mu.Lock()
			defer b.mu.Unlock()
			s := shortDuration(b.now().Sub(nb.started))
			if nb.percent > 0 {
				s += fmt.Sprintf(" %3.0f %%", nb.percent)
			}
			if nb.attempt > 1 {
				s += fmt.Sprintf(" (attempt %d)", nb.attempt)
			}
			return s
		})))
	b.mu.Lock()
	nb.bar = bar
	b.mu.Unlock()
}

func (b *barProgress) stopNode(id string) {
	b.mu.Lock()
	nb := b.running[id]
	delete(b.running, id)
	if nb == nil && b.hidden > 0 {
		b.hidden--
	}
	var bar *mpb.Bar
	if nb != nil {
		bar = nb.bar
	}
	b.mu.Unlock()
	if bar != nil {
		bar.Abort(true)
	}
}

// Close removes the node lines, leaves the total bar as it stands and
// waits until the display is written.
func (b *barProgress) Close() {
	b.mu.Lock()
	ids := make([]string, 0, len(b.running))
	for id := range b.running {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		b.stopNode(id)
	}
	b.total.Abort(false)
	b.p.Wait()
	b.mu.Lock()
	line := b.finishedLine
	b.mu.Unlock()
	if line != "" { // below the final bar, which stays on screen
		fmt.Fprintln(b.w, line)
	}
}
