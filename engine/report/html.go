package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   formatPercent,
	"inc":   func(i int) int { return i + 1 },
	"short": findingsShort,
	"isURL": func(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") },
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}).Parse(htmlSource))

// htmlView is what the template reads: the report and its drawings.
type htmlView struct {
	*Report
	Timeline timelineView
	Graph    graphView
	Cards    []card
	Kinds    []breakdownRow
	Crits    []breakdownRow
	Legend   []legendItem
	Nodes    []nodeRow
	// AllVitalBack is true when every vital service (or, without any,
	// every node) is back: the headline turns green.
	AllVitalBack bool
	StatusNote   string
	Waiting      []waitingRow
	Elapsed      string // from the first start to the last end
	Took         string // active work: at least one attempt going on
	ReportName   string // "Rebuild report", or "Drill report" for a drill
	// CleanupCommand records a drill's clean-up (shown while it is not).
	CleanupCommand string
	// DeadlineRows are the deadlines, what needs action first.
	DeadlineRows []deadlineRow
}

// deadlineRow is a deadline with its node (for the owner) and its status
// in words.
type deadlineRow struct {
	Deadline
	Node  Node
	Words string
}

// Who returns the node id's node, for its owner, contact and runbook.
func (v htmlView) Who(id string) *Node {
	n, ok := v.Report.node(id)
	if !ok {
		return nil
	}
	return &n
}

// DeadlineWords says the deadlines' counts: "1 late, 2 at risk, 5 met".
func (v htmlView) DeadlineWords() string { return v.Report.deadlineCounts() }

// DeadlinesOrigin says what deadlines count from.
func (v htmlView) DeadlinesOrigin() string { return v.Report.deadlinesOrigin() }

// waitingRow is a manual gate that waits for someone's approval.
type waitingRow struct {
	Node
	Since, For string
}

// statusNotes explain a run status to a reader who does not know reprise.
var statusNotes = map[string]string{
	string(state.RunRunning):     "a process is working on it, or stopped without saying so",
	string(state.RunInterrupted): "stopped by an operator, or its process went away; can be resumed",
	string(state.RunParked):      "only manual approvals are left",
	string(state.RunFailed):      "finished with failed or blocked nodes",
	string(state.RunSucceeded):   "every node is restored",
}

// card is one counter of the summary.
type card struct {
	State, Label, Glyph string
	Count               int
}

// breakdownRow is one line of a by-kind or by-criticality table with a
// stacked bar of its states.
type breakdownRow struct {
	Breakdown
	Segments []segment
}

type segment struct {
	X, W  int
	State string
	Tip   string
}

type legendItem struct{ State, Glyph, Label string }

type nodeRow struct {
	Node
	Glyph, Started, Ended, Took string
	OutputList                  []output
}

// output is one of a node's outputs, in key order.
type output struct{ Key, Value string }

// outputList lists a node's outputs by key.
func outputList(m map[string]string) []output {
	out := make([]output, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, output{k, m[k]})
	}
	return out
}

// cardStates orders the summary's counters: what a crisis cell asks first.
var cardStates = []struct {
	s     state.NodeState
	label string
}{
	{state.NodeSucceeded, "restored"},
	{state.NodeFailed, "failed"},
	{state.NodeBlocked, "blocked"},
	{state.NodeWaiting, "waiting for approval"},
	{state.NodeRunning, "running"},
	{state.NodePending, "pending"},
	{state.NodeSkipped, "skipped"},
}

// segWidth is the width of a breakdown's stacked bar.
const segWidth = 160

func (r *Report) view() htmlView {
	v := htmlView{Report: r, ReportName: r.name(), Timeline: r.layoutTimeline(), Graph: layoutGraph(r.Nodes, r.Zones),
		StatusNote: statusNotes[r.Run.Status]}
	if r.Run.Drill {
		v.CleanupCommand = cleanupCommand(r.Run.ID)
	}
	if s := r.Summary; s.Vital.Total > 0 {
		v.AllVitalBack = s.Vital.Restored == s.Vital.Total
	} else {
		v.AllVitalBack = s.Restored == s.Total
	}
	for _, c := range cardStates {
		v.Cards = append(v.Cards, card{State: string(c.s), Label: c.label, Glyph: glyph(string(c.s)),
			Count: r.Summary.States[string(c.s)]})
		v.Legend = append(v.Legend, legendItem{State: string(c.s), Glyph: glyph(string(c.s)), Label: c.label})
	}
	v.Kinds = breakdownRows(r.Summary.ByKind)
	v.Crits = breakdownRows(r.Summary.ByCriticality)
	if !r.Run.Start.IsZero() {
		v.Elapsed = humanDuration(r.Run.End.Sub(r.Run.Start))
		v.Took = humanDuration(r.active)
	}
	for _, n := range r.Nodes {
		if n.State == string(state.NodeWaiting) {
			w := waitingRow{Node: n, Since: r.clock(n.Started)}
			if !n.Started.IsZero() {
				w.For = humanDuration(r.waitUntil.Sub(n.Started))
			}
			v.Waiting = append(v.Waiting, w)
		}
	}
	for _, d := range r.deadlinesByUrgency() {
		n, _ := r.node(d.NodeID)
		v.DeadlineRows = append(v.DeadlineRows, deadlineRow{Deadline: d, Node: n, Words: statusWords(d.Status)})
	}
	for _, n := range r.Nodes {
		row := nodeRow{Node: n, Glyph: glyph(n.State), Started: r.clock(n.Started), Ended: r.clock(n.Ended),
			OutputList: outputList(n.Outputs)}
		if !n.Started.IsZero() && !n.Ended.IsZero() {
			row.Took = humanDuration(n.Ended.Sub(n.Started))
		}
		v.Nodes = append(v.Nodes, row)
	}
	return v
}

func breakdownRows(list []Breakdown) []breakdownRow {
	out := make([]breakdownRow, 0, len(list))
	for _, b := range list {
		row := breakdownRow{Breakdown: b}
		x := 0
		for i, c := range cardStates {
			n := b.States[string(c.s)]
			if n == 0 || b.Total == 0 {
				continue
			}
			w := n * segWidth / b.Total
			if i == len(cardStates)-1 || x+w > segWidth {
				w = segWidth - x
			}
			row.Segments = append(row.Segments, segment{X: x + 1, W: w, State: string(c.s),
				Tip: fmt.Sprintf("%d %s", n, c.label)})
			x += w
		}
		if k := len(row.Segments); k > 0 && x < segWidth { // rounding: give the rest to the last one
			row.Segments[k-1].W += segWidth - x
		}
		out = append(out, row)
	}
	return out
}

// Clock formats a time in the report's zone for the template ("—" when
// unknown).
func (v htmlView) Clock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return v.Report.clock(t)
}

// HTML writes the report as one self-contained HTML page: inline CSS and
// SVG, no script, nothing fetched from anywhere. A drill's page opens with a
// banner that says so, with its clean-up record or a warning that it is
// missing; a real run's page has none of it. Every value is escaped by
// html/template.
func (r *Report) HTML(w io.Writer) error {
	if err := htmlTemplate.Execute(w, r.view()); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
