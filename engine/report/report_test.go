package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

func TestBuildSummary(t *testing.T) {
	r := mustFixture(t)
	s := r.Summary
	if s.Total != 14 || s.Restored != 10 {
		t.Errorf("total, restored = %d, %d; want 14, 10", s.Total, s.Restored)
	}
	wantStates := map[string]int{"succeeded": 10, "failed": 1, "blocked": 2, "waiting": 1, "pending": 0, "running": 0, "skipped": 0}
	if !reflect.DeepEqual(s.States, wantStates) {
		t.Errorf("states = %v; want %v", s.States, wantStates)
	}
	if s.Vital != (Share{Restored: 7, Total: 8, Percent: 87.5}) {
		t.Errorf("vital = %+v; want 7 of 8 (effective vital), 87.5 %%", s.Vital)
	}
	if want := "87 % of vital services back (7 of 8)"; s.Headline != want {
		t.Errorf("headline = %q; want %q", s.Headline, want)
	}
	type brief struct {
		name            string
		total, restored int
	}
	var kinds, crits []brief
	for _, b := range s.ByKind {
		kinds = append(kinds, brief{b.Name, b.Total, b.Restored})
	}
	for _, b := range s.ByCriticality {
		crits = append(crits, brief{b.Name, b.Total, b.Restored})
	}
	if want := []brief{{"infrastructure", 4, 4}, {"application", 7, 5}, {"interface", 1, 0}, {"data", 2, 1}}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("by kind = %v; want %v", kinds, want)
	}
	if want := []brief{{"vital", 8, 7}, {"high", 2, 1}, {"normal", 2, 1}, {"low", 2, 1}}; !reflect.DeepEqual(crits, want) {
		t.Errorf("by criticality = %v; want %v", crits, want)
	}
}

func TestBuildNodes(t *testing.T) {
	r := mustFixture(t)
	byID := map[string]Node{}
	for _, n := range r.Nodes {
		byID[n.ID] = n
	}
	tests := []struct {
		id, effective string
		wave          int
		blockedBy     []string
		attempts      int
	}{
		{"network", "vital", 0, nil, 1},
		{"ad", "vital", 1, nil, 1},
		{"lis", "vital", 2, nil, 2},
		{"lab-middleware", "high", 3, []string{"lis"}, 0},
		{"lis-to-dpi", "normal", 3, []string{"lis"}, 0},
		{"pmsi-signoff", "low", 4, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			n := byID[tt.id]
			if n.Effective != tt.effective || n.Wave != tt.wave || !reflect.DeepEqual(n.BlockedBy, tt.blockedBy) || len(n.Attempts) != tt.attempts {
				t.Errorf("got effective %s wave %d blocked by %v, %d attempts; want %s, %d, %v, %d",
					n.Effective, n.Wave, n.BlockedBy, len(n.Attempts), tt.effective, tt.wave, tt.blockedBy, tt.attempts)
			}
		})
	}
	if len(r.Failures) != 1 || r.Failures[0].NodeID != "lis" || r.Failures[0].Attempts != 2 ||
		!reflect.DeepEqual(r.Failures[0].Blocks, []string{"lab-middleware", "lis-to-dpi"}) ||
		!strings.Contains(r.Failures[0].LastError, "2026-08-19") {
		t.Errorf("failures = %+v", r.Failures)
	}
	var got []string
	for _, d := range r.Decisions {
		got = append(got, d.Type+" "+d.NodeID+" "+d.By+" "+d.At.Format("15:04"))
	}
	if want := []string{"override sterilisation m.durand 09:30", "approval paper-reentry dr.lefevre 10:11"}; !reflect.DeepEqual(got, want) {
		t.Errorf("decisions = %q; want %q", got, want)
	}
	if !r.Journal.OK || r.Journal.Entries != 30 || len(r.Journal.Head) != 64 || r.Journal.HeadSeq != 30 {
		t.Errorf("journal = %+v; want OK, 30 entries, a head hash", r.Journal)
	}
	if !r.Run.Start.Equal(t0) || !r.Run.End.Equal(at(140)) {
		t.Errorf("span = %v .. %v; want %v .. %v", r.Run.Start, r.Run.End, t0, at(140)) // a gate still waits: up to Now
	}
}

// externalRef finds anything a browser would fetch: a scheme, src=,
// @import, url() that is not a fragment, a link to a stylesheet.
var externalRef = regexp.MustCompile(`(?i)https?://|\bsrc\s*=|@import|url\(\s*['"]?[^#'"\s]|<link\b|<script\b|<iframe\b|<object\b|<embed\b|<img\b|xlink:href|\bhref\s*=\s*["']?[^#"'\s]`)

func TestHTMLSelfContained(t *testing.T) {
	r := mustFixture(t)
	var buf bytes.Buffer
	if err := r.HTML(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if m := externalRef.FindAllString(out, -1); len(m) > 0 {
		t.Errorf("HTML refers outside itself: %q", m)
	}
	for _, want := range []string{
		`id="summary"`, `id="headline"`, "87 % of vital services back (7 of 8)",
		`id="timeline-svg"`, `<rect class="bar r-failed"`, `<rect class="bar r-succeeded"`, `<path class="marker"`,
		`id="graph-svg"`, `data-node="lis" data-state="failed"`, `data-node="lab-middleware" data-state="blocked"`,
		`class="edge bad"`, "checksum mismatch on backup set 2026-08-19 &lt;older set&gt;",
		"dr.lefevre", "emergency paper files typed in", "m.durand", "hash chain is intact: 30 entries verified",
		"wave 5", `<tr class="waiting" data-node="pmsi-signoff">`, "lasted <b>2h20m</b>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// One bar per attempt.
	if got := strings.Count(out, `<rect class="bar `); got != 13 {
		t.Errorf("%d timeline bars; want 13 (one per attempt)", got)
	}
}

func TestHTMLEscapesEverything(t *testing.T) {
	evil := `<script src="http://evil.example/x.js"></script><img src=x onerror=alert(1)>`
	g := &graphs.Graph{Name: "g</title><script>", Nodes: []*graphs.Node{
		{ID: "a", Kind: graphs.KindApplication, Title: evil, Criticality: graphs.CriticalityVital},
		{ID: `b"><svg onload=alert(1)>`, Kind: graphs.KindData, DependsOn: []string{"a"}},
	}}
	recs := []state.NodeRecord{
		{ID: "a", State: state.NodeFailed, Attempts: 1, LastError: evil,
			History: []state.Attempt{{N: 1, Started: t0, Ended: at(1), Result: state.NodeFailed, Error: evil}}},
		{ID: `b"><svg onload=alert(1)>`, State: state.NodeBlocked},
	}
	journal := []state.Entry{{Seq: 1, Time: at(2), Type: "marked", NodeID: "a", By: evil, Message: evil, Hash: "x"}}
	r := Build(state.Run{ID: "r<1>", Status: state.RunFailed}, recs, journal,
		state.VerifyReport{Entries: 1, OK: false, FirstBad: 1, Problem: evil}, g, Options{Now: at(3)})
	var buf bytes.Buffer
	if err := r.HTML(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<script", "<img", "<svg onload", "evil.example/x.js\">"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML holds unescaped %q", bad)
		}
	}
	if !strings.Contains(out, "does NOT verify") {
		t.Error("a broken journal chain is not reported")
	}
	buf.Reset()
	if err := r.Markdown(&buf); err != nil {
		t.Fatal(err)
	}
	if md := buf.String(); strings.Contains(md, "<script") || strings.Contains(md, "<img") {
		t.Errorf("Markdown holds raw HTML:\n%s", md)
	}
}

func TestMarkdown(t *testing.T) {
	r := mustFixture(t)
	var buf bytes.Buffer
	if err := r.Markdown(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"# Rebuild report: chsf-mini\n",
		"**87 % of vital services back (7 of 8)**\n",
		"| 10 | 1 | 2 | 1 | 0 | 0 | 0 | 14 |\n",
		"| infrastructure | 4 / 4 | 100 % | 0 | 0 | 0 | 0 |\n",
		"| vital | 7 / 8 | 87.5 % | 1 | 0 | 0 | 0 |\n",
		"| **lis** | application | vital | 2 | 2026-11-28 09:24:00 | restore-lis.sh: database restore: checksum mismatch on backup set 2026-08-19 &lt;older set> | lab-middleware, lis-to-dpi | — |\n",
		"| 2026-11-28 10:11:00 | approval | paper-reentry | **dr.lefevre** | emergency paper files typed in, checked by 2 nurses |\n",
		"| 2026-11-28 09:30:00 | override | sterilisation | **m.durand** | restored by hand from the vendor's image |\n",
		"The journal's hash chain is intact: 30 entries verified",
		"| lab-middleware | ⊘ blocked | application | high | — | 4 | 0 | — | — | — | blocked by lis |\n",
		"## Waiting for approval\n\n| Node | Kind | Criticality | Waiting since | Who to call |\n|---|---|---|---|---|\n| **pmsi-signoff** | data | low | 2026-11-28 09:52:06 | — |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q; got:\n%s", want, out)
		}
	}
}

func TestJSON(t *testing.T) {
	r := mustFixture(t)
	var buf bytes.Buffer
	if err := r.JSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	back.loc = r.loc
	if !reflect.DeepEqual(back.Summary, r.Summary) || len(back.Nodes) != len(r.Nodes) || back.Schema != SchemaVersion {
		t.Errorf("JSON does not round-trip: %+v", back.Summary)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"schema", "generated", "run", "summary", "nodes", "failures", "decisions", "journal"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("JSON lacks top-level %q", key)
		}
	}
	nodes := raw["nodes"].([]any)
	first := nodes[0].(map[string]any)
	for _, key := range []string{"id", "kind", "criticality", "effective", "wave", "state", "attempts"} {
		if _, ok := first[key]; !ok {
			t.Errorf("JSON node lacks %q: %v", key, first)
		}
	}
}

func TestEmptyRun(t *testing.T) {
	r := Build(state.Run{ID: "empty", Status: state.RunRunning}, nil, nil, state.VerifyReport{OK: true}, nil, Options{Now: t0})
	for name, render := range map[string]func(*bytes.Buffer) error{
		"html": func(b *bytes.Buffer) error { return r.HTML(b) }, "markdown": func(b *bytes.Buffer) error { return r.Markdown(b) },
		"json": func(b *bytes.Buffer) error { return r.JSON(b) },
	} {
		var buf bytes.Buffer
		if err := render(&buf); err != nil || buf.Len() == 0 {
			t.Errorf("%s of an empty run: %v, %d bytes", name, err, buf.Len())
		}
	}
	var buf bytes.Buffer
	if err := r.JSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"nodes": []`, `"failures": []`, `"decisions": []`, `"by_kind": []`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON of an empty run lacks %s:\n%s", want, buf.String())
		}
	}
	if want := "0 % of the nodes back (0 of 0); no node is vital"; r.Summary.Headline != want {
		t.Errorf("headline = %q; want %q", r.Summary.Headline, want)
	}
}

func TestTickStep(t *testing.T) {
	tests := []struct {
		span, want time.Duration
	}{
		{2 * time.Second, 200 * time.Millisecond},
		{5 * time.Second, 500 * time.Millisecond},
		{9 * time.Second, time.Second},
		{90 * time.Second, 10 * time.Second},
		{131 * time.Minute, 15 * time.Minute},
		{26 * time.Hour, 3 * time.Hour},
		{8 * 7 * 24 * time.Hour, 7 * 24 * time.Hour},
		{400 * 24 * time.Hour, 56 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := tickStep(tt.span); got != tt.want {
			t.Errorf("tickStep(%v) = %v; want %v", tt.span, got, tt.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{2100 * time.Millisecond, "2.1s"}, {245 * time.Second, "4m05s"}, {3*time.Hour + 12*time.Minute, "3h12m"},
		{52 * time.Hour, "2d04h"}, {-time.Second, "0.0s"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}

func TestRunningRunAndActions(t *testing.T) {
	g := &graphs.Graph{Name: "live", Nodes: []*graphs.Node{
		{ID: "ad", Kind: graphs.KindInfrastructure, Criticality: graphs.CriticalityVital},
		{ID: "dpi", Kind: graphs.KindApplication, DependsOn: []string{"ad"}},
	}}
	recs := []state.NodeRecord{
		{ID: "ad", State: state.NodeSucceeded, History: []state.Attempt{{N: 1, Started: t0, Ended: at(5), Result: state.NodeSucceeded}}},
		{ID: "dpi", State: state.NodeRunning, History: []state.Attempt{{N: 1, Started: at(6)}}},
	}
	journal := []state.Entry{
		{Seq: 7, Time: at(6), Type: "reset", NodeID: "dpi", By: "ops.night", Message: "retry after the SAN fix"},
		{Seq: 8, Time: at(6), Type: "run-resumed", By: "ops.night"},
	}
	r := Build(state.Run{ID: "live", Status: state.RunRunning}, recs, journal, state.VerifyReport{OK: true, Entries: 8}, g, Options{Now: at(10), Live: true})
	if got := r.Nodes[1].Attempts[0].Result; got != "running" {
		t.Errorf("open attempt result %q; want running", got)
	}
	if !r.Run.End.Equal(at(10)) {
		t.Errorf("timeline ends %v; want the generation time %v", r.Run.End, at(10))
	}
	want := []Decision{
		{Type: DecisionOther, NodeID: "dpi", By: "ops.night", At: at(6), Reason: "reset: retry after the SAN fix", Seq: 7},
		{Type: DecisionOther, By: "ops.night", At: at(6), Reason: "run-resumed", Seq: 8},
	}
	if !reflect.DeepEqual(r.Decisions, want) {
		t.Errorf("decisions = %+v; want %+v", r.Decisions, want)
	}
	var buf bytes.Buffer
	if err := r.HTML(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`<rect class="bar r-running"`, `data-node="dpi" data-state="running"`, "retry after the SAN fix"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
}
