package report

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// renderAll renders a report in the three formats.
func renderAll(t *testing.T, r *Report) (html, md, js string) {
	t.Helper()
	var h, m, j bytes.Buffer
	if err := r.HTML(&h); err != nil {
		t.Fatal(err)
	}
	if err := r.Markdown(&m); err != nil {
		t.Fatal(err)
	}
	if err := r.JSON(&j); err != nil {
		t.Fatal(err)
	}
	return h.String(), m.String(), j.String()
}

// TestDrillReport: a drill's report says so before anything else, in every
// format, with its clean-up record or a warning that it is missing; a real
// run's report says none of it.
func TestDrillReport(t *testing.T) {
	const note = "test VMs reverted to their snapshots, exercise DNS zone <drill.chsf> deleted"
	cleanup := &state.Cleanup{By: "M. Martin", At: at(135), Note: note}
	tests := []struct {
		name                   string
		kind                   fixtureKind
		html, md               []string // in this order, each after the previous one
		notHTML, notMD         []string
		jsonDrill, jsonCleanup string // the JSON of run.drill and run.cleanup
	}{{
		name: "real run",
		kind: fixtureKind{},
		html: []string{"<title>Rebuild report: chsf-mini, run 20261128-080000-test</title>",
			"<h1>Rebuild report: chsf-mini</h1>", `id="headline">87 % of vital services back (7 of 8)`},
		md:        []string{"# Rebuild report: chsf-mini\n\n**87 % of vital services back (7 of 8)**\n"},
		notHTML:   []string{"drill", "DRILL", "Drill", "Clean-up", "clean-up", "reprise cleanup", "@page"},
		notMD:     []string{"drill", "DRILL", "Drill", "Clean-up", "clean-up", "reprise cleanup"},
		jsonDrill: "false", jsonCleanup: "null",
	}, {
		name: "drill, clean-up not recorded",
		kind: fixtureKind{drill: true},
		html: []string{"<title>Drill report: chsf-mini, run 20261128-080000-test</title>",
			`<div class="drill" id="drill"`, `<span class="tag">DRILL</span>An exercise on the real plan, not a restore of production.`,
			`<p class="cleanup missing" id="cleanup">⚠ Clean-up not recorded yet.`,
			"<code>reprise cleanup 20261128-080000-test --by NAME --note &#34;what was cleaned up&#34;</code>",
			"<h1>Drill report: chsf-mini</h1>", `id="headline">Drill: 87 % of vital services back (7 of 8)`,
			"<footer><b>Drill report</b>, an exercise on the real plan, not a restore of production."},
		md: []string{"# Drill report: chsf-mini\n\n",
			"**DRILL** — an exercise on the real plan, not a restore of production; the states below are those of the exercise.\n\n",
			"**Clean-up not recorded yet.** Once what the drill set up is cleaned up, record it: " +
				"`reprise cleanup 20261128-080000-test --by NAME --note \"what was cleaned up\"`\n\n",
			"**Drill: 87 % of vital services back (7 of 8)**\n"},
		notHTML:   []string{"Clean-up recorded", "cleaned-up"},
		notMD:     []string{"Clean-up recorded", "cleaned-up"},
		jsonDrill: "true", jsonCleanup: "null",
	}, {
		name: "drill, cleaned up",
		kind: fixtureKind{drill: true, cleanup: cleanup},
		html: []string{"<title>Drill report: chsf-mini",
			`<span class="tag">DRILL</span>An exercise on the real plan, not a restore of production.`,
			`<p class="cleanup recorded" id="cleanup">✓ Clean-up recorded by <b>M. Martin</b> on <b>2026-11-28 10:15:00</b>: ` +
				"test VMs reverted to their snapshots, exercise DNS zone &lt;drill.chsf&gt; deleted</p>",
			`id="headline">Drill: 87 % of vital services back (7 of 8)`,
			// The journal's entry shows with the other operator acts.
			`<tr class="decision" data-type="action"><td>2026-11-28 10:15:00</td><td>action</td><td></td><td><b>M. Martin</b></td>` +
				"<td>cleaned-up: test VMs reverted to their snapshots, exercise DNS zone &lt;drill.chsf&gt; deleted</td></tr>",
			"hash chain is intact: 31 entries verified"},
		md: []string{"# Drill report: chsf-mini\n\n**DRILL** — ",
			"Clean-up recorded by **M. Martin** on 2026-11-28 10:15:00: test VMs reverted to their snapshots, exercise DNS zone &lt;drill.chsf> deleted\n\n",
			"**Drill: 87 % of vital services back (7 of 8)**\n",
			"| 2026-11-28 10:15:00 | action |  | **M. Martin** | cleaned-up: test VMs reverted to their snapshots, exercise DNS zone &lt;drill.chsf> deleted |\n"},
		notHTML:   []string{"not recorded yet", "reprise cleanup"},
		notMD:     []string{"not recorded yet", "reprise cleanup"},
		jsonDrill: "true",
		jsonCleanup: `{"by":"M. Martin","at":"2026-11-28T10:15:00Z",` +
			`"note":"test VMs reverted to their snapshots, exercise DNS zone \u003cdrill.chsf\u003e deleted"}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustFixtureOf(t, tt.kind)
			html, md, js := renderAll(t, r)
			if m := externalRef.FindAllString(html, -1); len(m) > 0 {
				t.Errorf("HTML refers outside itself: %q", m)
			}
			for _, c := range []struct {
				format, out string
				want, not   []string
			}{{"HTML", html, tt.html, tt.notHTML}, {"Markdown", md, tt.md, tt.notMD}} {
				rest := c.out
				for _, w := range c.want {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Errorf("%s lacks %q after the previous check; got:\n%.3000s", c.format, w, c.out)
						break
					}
					rest = rest[i+len(w):]
				}
				for _, n := range c.not {
					if strings.Contains(c.out, n) {
						t.Errorf("%s holds %q", c.format, n)
					}
				}
			}
			var doc struct {
				Run struct {
					Drill   json.RawMessage `json:"drill"`
					Cleanup json.RawMessage `json:"cleanup"`
				} `json:"run"`
			}
			if err := json.Unmarshal([]byte(js), &doc); err != nil {
				t.Fatal(err)
			}
			var cleanupJSON bytes.Buffer
			if err := json.Compact(&cleanupJSON, doc.Run.Cleanup); err != nil {
				t.Fatalf("run.cleanup: %v in %s", err, js)
			}
			if got := string(doc.Run.Drill); got != tt.jsonDrill {
				t.Errorf("JSON run.drill = %s; want %s", got, tt.jsonDrill)
			}
			if got := cleanupJSON.String(); got != tt.jsonCleanup {
				t.Errorf("JSON run.cleanup = %s; want %s", got, tt.jsonCleanup)
			}
			var back Report
			if err := json.Unmarshal([]byte(js), &back); err != nil {
				t.Fatal(err)
			}
			if back.Run.Drill != r.Run.Drill || (back.Run.Cleanup == nil) != (r.Run.Cleanup == nil) ||
				(r.Run.Cleanup != nil && (back.Run.Cleanup.By != r.Run.Cleanup.By || !back.Run.Cleanup.At.Equal(r.Run.Cleanup.At) ||
					back.Run.Cleanup.Note != r.Run.Cleanup.Note)) {
				t.Errorf("JSON does not round-trip the drill: %+v, %+v; want %+v, %+v", back.Run.Drill, back.Run.Cleanup,
					r.Run.Drill, r.Run.Cleanup)
			}
		})
	}
}

// TestDrillTimeSpan: a drill's clean-up, recorded after the run (often the
// next day), neither stretches the run's span nor keeps its open gates
// waiting beyond it; journal entries of types the report does not know
// still show as operator acts.
func TestDrillTimeSpan(t *testing.T) {
	g := &graphs.Graph{Name: "drill", Nodes: []*graphs.Node{
		{ID: "ad", Kind: graphs.KindInfrastructure, Criticality: graphs.CriticalityVital},
		{ID: "gate", Kind: graphs.KindData, DependsOn: []string{"ad"}},
	}}
	nextDay := at(25 * 60) // 09:00 the next day
	aWeekLater := at(7 * 24 * 60)
	cleanedUp := state.Entry{Seq: 9, Time: nextDay, Type: "cleaned-up", By: "M. Martin", Message: "VMs reverted"}
	unknown := state.Entry{Seq: 5, Time: at(4), Type: "exercise-inject", By: "umpire", Message: "the SAN is declared lost"}
	tests := []struct {
		name    string
		gate    state.NodeState // the gate's state: succeeded at 00:30, or waiting since 00:20
		cleanup *state.Cleanup
		now     time.Time
		wantEnd time.Time
		lasted  string
	}{
		{"done, cleaned up next day", state.NodeSucceeded, &state.Cleanup{By: "M. Martin", At: nextDay, Note: "VMs reverted"},
			aWeekLater, at(30), "30m00s"},
		{"done, not cleaned up", state.NodeSucceeded, nil, aWeekLater, at(30), "30m00s"},
		{"gate waits, cleaned up next day", state.NodeWaiting, &state.Cleanup{By: "M. Martin", At: nextDay, Note: "VMs reverted"},
			aWeekLater, nextDay, "1d01h"},
		{"gate waits, not cleaned up", state.NodeWaiting, nil, aWeekLater, aWeekLater, "7d00h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := state.NodeRecord{ID: "gate", State: tt.gate, History: []state.Attempt{{N: 1, Started: at(20), Result: state.NodeWaiting}}}
			if tt.gate == state.NodeSucceeded {
				gate.History[0].Ended, gate.History[0].Result = at(30), state.NodeSucceeded
			}
			recs := []state.NodeRecord{
				{ID: "ad", State: state.NodeSucceeded, History: []state.Attempt{{N: 1, Started: t0, Ended: at(10), Result: state.NodeSucceeded}}},
				gate,
			}
			journal := []state.Entry{unknown}
			if tt.cleanup != nil {
				journal = append(journal, cleanedUp)
			}
			run := state.Run{ID: "d1", Status: state.RunSucceeded, Created: t0, Options: state.RunOptions{Drill: true}, Cleanup: tt.cleanup}
			r := Build(run, recs, journal, state.VerifyReport{OK: true, Entries: 9}, g, Options{Now: tt.now})
			if !r.Run.Start.Equal(t0) || !r.Run.End.Equal(tt.wantEnd) {
				t.Errorf("span %v .. %v; want %v .. %v", r.Run.Start, r.Run.End, t0, tt.wantEnd)
			}
			want := []Decision{{Type: DecisionOther, By: "umpire", At: at(4), Reason: "exercise-inject: the SAN is declared lost", Seq: 5}}
			if tt.cleanup != nil {
				want = append(want, Decision{Type: DecisionOther, By: "M. Martin", At: nextDay, Reason: "cleaned-up: VMs reverted", Seq: 9, cleanup: true})
			}
			if len(r.Decisions) != len(want) {
				t.Fatalf("decisions = %+v; want %+v", r.Decisions, want)
			}
			for i := range want {
				if r.Decisions[i] != want[i] {
					t.Errorf("decision %d = %+v; want %+v", i, r.Decisions[i], want[i])
				}
			}
			html, _, _ := renderAll(t, r)
			for _, s := range []string{"lasted <b>" + tt.lasted + "</b>", "exercise-inject: the SAN is declared lost"} {
				if !strings.Contains(html, s) {
					t.Errorf("HTML lacks %q", s)
				}
			}
		})
	}
}

// TestEngineDrillReport: the report of a drill run by the real engine, and
// of its clean-up recorded by engine.RecordCleanup, read back from the
// state file.
func TestEngineDrillReport(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: drill-hospital
defaults: {retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop}
  - {id: dpi, kind: application, criticality: vital, plugin: noop, depends_on: [ad]}
`)
	st := enginetest.MustStore(t, dir)
	var mu sync.Mutex
	clock := t0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	e := engine.New(st, &enginetest.FakeHost{}, engine.Options{Drill: true, Now: now})
	ctx := context.Background()
	res, err := e.Start(ctx, g)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	before := mustStoredReport(t, st, res.RunID, at(60))
	if !before.Run.Drill || before.Run.Cleanup != nil || !strings.HasPrefix(before.Summary.Headline, "Drill: 100 % of vital services back") {
		t.Errorf("drill before clean-up: drill %v, cleanup %+v, headline %q", before.Run.Drill, before.Run.Cleanup, before.Summary.Headline)
	}
	if err := e.RecordCleanup(ctx, res.RunID, "M. Martin", "exercise DNS zone deleted"); err != nil {
		t.Fatalf("record clean-up: %v", err)
	}
	r := mustStoredReport(t, st, res.RunID, at(60))
	if c := r.Run.Cleanup; c == nil || c.By != "M. Martin" || c.Note != "exercise DNS zone deleted" || c.At.IsZero() {
		t.Fatalf("clean-up = %+v; want M. Martin's record", c)
	}
	if !r.Journal.OK || r.Journal.Entries != before.Journal.Entries+1 {
		t.Errorf("journal = %+v; want a verified chain with one more entry than %d", r.Journal, before.Journal.Entries)
	}
	html, md, _ := renderAll(t, r)
	for _, s := range []string{`<span class="tag">DRILL</span>`, "Clean-up recorded by <b>M. Martin</b> on <b>" + r.clock(r.Run.Cleanup.At) +
		"</b>: exercise DNS zone deleted", "<td>cleaned-up: exercise DNS zone deleted</td>"} {
		if !strings.Contains(html, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	if !strings.Contains(md, "Clean-up recorded by **M. Martin** on ") {
		t.Errorf("Markdown lacks the clean-up record:\n%s", md)
	}
}

func TestShellWord(t *testing.T) {
	tests := []struct{ in, want string }{
		{"20261128-080000-a1b2", "20261128-080000-a1b2"},
		{"run 1", "'run 1'"},
		{"it's; rm -rf /", `'it'\''s; rm -rf /'`},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellWord(tt.in); got != tt.want {
			t.Errorf("shellWord(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}
