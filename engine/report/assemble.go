package report

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/reprise-si/reprise/engine/view"
)

// Options tune Build. The zero value is usable.
type Options struct {
	// Now is the generation time (zero: time.Now()). Attempts that have not
	// ended are drawn up to Now when the run is live, else up to when it
	// was last seen (in a drill, up to its recorded clean-up if that is
	// earlier).
	Now time.Time
	// Location is the time zone times are shown in by HTML and Markdown
	// (nil: UTC). JSON always carries RFC 3339 times with their offset.
	Location *time.Location
	// Live says a process is running the run now (Build only; FromModel
	// reads it from the model). A run recorded as running that is not
	// live is reported as interrupted.
	Live bool
}

// assemble completes a report whose Run, Nodes, Decisions and Journal are
// set from m: the failures, the time span and the summary.
func assemble(r *Report, m *view.Model, opts Options) {
	r.Schema = SchemaVersion
	r.loc = opts.Location
	if r.loc == nil {
		r.loc = time.UTC
	}
	r.waitUntil = m.WaitUntil()
	r.Failures = failures(m)
	r.Run.Start, r.Run.End = span(r, m)
	r.Run.ActiveSeconds = math.Round(m.Active.Seconds()*10) / 10
	if !r.Run.Start.IsZero() {
		r.Run.SpanSeconds = math.Round(r.Run.End.Sub(r.Run.Start).Seconds()*10) / 10
	}
	if m.Status != "succeeded" && m.ETA > 0 {
		r.Run.ETASeconds = m.ETA.Seconds()
	}
	r.active = m.Active
	r.Summary = summarize(m)
	if r.Run.Drill {
		r.Summary.Headline = "Drill: " + r.Summary.Headline
	}
	sort.SliceStable(r.Decisions, func(a, b int) bool { return r.Decisions[a].At.Before(r.Decisions[b].At) })
}

func failures(m *view.Model) []Failure {
	out := []Failure{}
	for _, f := range m.Failures {
		kind := "unknown"
		if m.Graph != nil && f.Kind != "" {
			kind = string(f.Kind)
		}
		out = append(out, Failure{NodeID: f.ID, Title: f.Title, Kind: kind, Effective: string(f.Effective),
			Attempts: len(f.History), At: f.Ended, LastError: f.Error, Blocks: f.Blocks})
	}
	return out
}

// span returns the model's span, stretched to the last operator decision
// (an approval after the last attempt); a drill's clean-up comes after the
// run, maybe days later, and does not stretch it.
func span(r *Report, m *view.Model) (start, end time.Time) {
	start, end = m.Start, m.End
	for _, d := range r.Decisions {
		if !d.cleanup && !d.At.IsZero() && !start.IsZero() && d.At.After(end) {
			end = d.At
		}
	}
	return start, end
}

func summarize(m *view.Model) Summary {
	s := Summary{Total: m.Total, States: map[string]int{}, Restored: m.Done, Percent: m.Percent,
		ByKind: breakdowns(m.ByKind), ByCriticality: breakdowns(m.ByCriticality),
		Vital: Share{Restored: m.Vital.Done, Total: m.Vital.Total, Percent: m.Vital.Percent}}
	for st, n := range m.Counts {
		s.States[string(st)] = n
	}
	s.Headline = headline(s)
	return s
}

func breakdowns(bs []view.Breakdown) []Breakdown {
	out := make([]Breakdown, 0, len(bs))
	for _, b := range bs {
		rb := Breakdown{Name: b.Key, Total: b.Total, Restored: b.Done, Percent: b.Percent, States: map[string]int{}}
		for st, n := range b.Counts {
			rb.States[string(st)] = n
		}
		out = append(out, rb)
	}
	return out
}

func headline(s Summary) string {
	if s.Vital.Total > 0 {
		return fmt.Sprintf("%d %% of vital services back (%d of %d)",
			floorPercent(s.Vital.Restored, s.Vital.Total), s.Vital.Restored, s.Vital.Total)
	}
	return fmt.Sprintf("%d %% of the nodes back (%d of %d); no node is vital",
		floorPercent(s.Restored, s.Total), s.Restored, s.Total)
}

// floorPercent rounds down, so that a headline never says 100 % while one
// node is still missing.
func floorPercent(part, total int) int {
	if total == 0 {
		return 0
	}
	return part * 100 / total
}

// formatPercent writes a percentage without a useless decimal: 83, 83.3.
func formatPercent(p float64) string {
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.1f", p)
}
