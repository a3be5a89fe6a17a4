package web

import (
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// The timeline's geometry.
const (
	tlLabel  = 210 // the node names' column
	tlPlot   = 980 // the time axis
	tlRow    = 18
	tlBar    = 12
	tlHead   = 34 // the axis above the rows
	tlRows   = 500
	tlMargin = 10
)

// timelineRow is one node that ran: its attempts.
type timelineRow struct {
	n     *view.Node
	first time.Time
}

// timelinePage is the Gantt of a run's attempts: a row per node that ran
// (by first start), a bar per attempt coloured by its outcome, the zones'
// certifications as markers, and for a live run the present.
func (s *Server) timelinePage(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	d, err := s.load(r.PathValue("run"), false)
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	m := d.M
	var rows []timelineRow
	for i := range m.Nodes {
		n := &m.Nodes[i]
		if len(n.History) > 0 && !n.History[0].Started.IsZero() {
			rows = append(rows, timelineRow{n: n, first: n.History[0].Started})
		}
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].first.Before(rows[b].first) })
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	from = max(0, min(from, len(rows)-1))
	page := rows
	if len(rows) > tlRows {
		page = rows[from:min(from+tlRows, len(rows))]
	}
	data := map[string]any{"Rows": len(rows), "From": from + 1, "To": from + len(page), "States": paintOrder}
	if from > 0 {
		data["Prev"] = max(0, from-tlRows)
	}
	if from+len(page) < len(rows) {
		data["Next"] = from + len(page)
	}
	if len(page) > 0 {
		data["SVG"] = svgTimeline(m, page)
	}
	name := "timeline.html"
	if r.URL.Query().Get("fragment") == "1" {
		name = "timeline-body"
	}
	s.render(w, http.StatusOK, name, pageData{Op: op, CSRF: csrf, Title: "Timeline of " + m.Run.ID, Run: d, Now: m.Now, Data: data})
}

// svgTimeline draws rows on one time axis from the run's first attempt
// to its last end (the present for a live run).
func svgTimeline(m *view.Model, rows []timelineRow) template.HTML {
	t0, t1 := m.Start, m.End
	if t0.IsZero() || !t1.After(t0) {
		t0, t1 = rows[0].first, rows[0].first.Add(time.Second)
	}
	for _, c := range m.Run.Certified {
		if c.At.After(t1) {
			t1 = c.At
		}
	}
	span := t1.Sub(t0)
	x := func(t time.Time) int {
		if t.Before(t0) {
			t = t0
		}
		return tlLabel + int(float64(tlPlot)*float64(t.Sub(t0))/float64(span))
	}
	h := tlHead + len(rows)*tlRow + tlMargin
	var b strings.Builder
	b.Grow(len(rows) * 300)
	fmt.Fprintf(&b, `<svg id="timeline-svg" class="timeline-svg" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`,
		tlLabel+tlPlot+tlMargin+40, h, tlLabel+tlPlot+tlMargin+40, h)
	step := tickStep(span)
	layout := "15:04:05"
	if span > 36*time.Hour {
		layout = "Jan 2 15:04"
	}
	for t := t0.Truncate(step).Add(step); !t.After(t1); t = t.Add(step) {
		fmt.Fprintf(&b, `<line class="tick" x1="%d" y1="%d" x2="%d" y2="%d"/><text class="tick-label" x="%d" y="%d">%s</text>`,
			x(t), tlHead-6, x(t), h, x(t), tlHead-10, t.Local().Format(layout))
	}
	run := url.PathEscape(m.Run.ID)
	for k, r := range rows {
		y := tlHead + k*tlRow
		n := r.n
		fmt.Fprintf(&b, `<g class="tl-row" data-id="%s"><a href="/runs/%s/nodes/%s"><text class="tl-name" x="%d" y="%d">%s</text></a>`,
			html.EscapeString(n.ID), run, url.PathEscape(n.ID), tlMargin, y+tlBar, html.EscapeString(clip(n.ID, 28)))
		for _, a := range n.History {
			if a.Started.IsZero() {
				continue
			}
			res := a.Result
			if res == "" || a.Ended.IsZero() {
				res = n.State
			}
			end := m.AttemptEnd(n, a)
			x1, x2 := x(a.Started), x(end)
			tip := fmt.Sprintf("%s attempt %d: %s, %s → %s (%s)", n.ID, a.N, res, a.Started.Local().Format("15:04:05"),
				end.Local().Format("15:04:05"), view.FormatDuration(end.Sub(a.Started).Round(time.Second)))
			if a.Error != "" {
				tip += ": " + clip(a.Error, 200)
			}
			fmt.Fprintf(&b, `<rect class="bar st-%s" data-attempt="%d" x="%d" y="%d" width="%d" height="%d"><title>%s</title></rect>`,
				html.EscapeString(string(res)), a.N, x1, y+2, max(2, x2-x1), tlBar, html.EscapeString(tip))
		}
		b.WriteString(`</g>`)
	}
	for _, c := range m.Run.Certified {
		lx, anchor := x(c.At)+4, "start"
		if lx > tlLabel+tlPlot-150 { // near the right edge: the label goes left of the line
			lx, anchor = x(c.At)-4, "end"
		}
		fmt.Fprintf(&b, `<g class="cert" data-zone="%s"><line x1="%d" y1="%d" x2="%d" y2="%d"/><text x="%d" y="%d" text-anchor="%s">zone %s certified</text><title>zone %s certified by %s at %s: %s</title></g>`,
			html.EscapeString(c.Zone), x(c.At), tlHead-4, x(c.At), h, lx, h-4, anchor, html.EscapeString(c.Zone),
			html.EscapeString(c.Zone), html.EscapeString(c.By), c.At.Local().Format("2006-01-02 15:04:05"), html.EscapeString(clip(c.Comment, 200)))
	}
	if m.Live {
		fmt.Fprintf(&b, `<line class="now" x1="%d" y1="%d" x2="%d" y2="%d"/>`, x(m.Now), tlHead-6, x(m.Now), h)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// tickStep is a round interval giving about ten ticks over span.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
		6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour} {
		if span/s <= 12 {
			return s
		}
	}
	return 14 * 24 * time.Hour
}
