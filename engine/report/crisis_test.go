package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/crisis"
)

// crisisGraph is the fixture hospital with trust zones, owners, contacts,
// runbooks and RTOs (vital 1h, high 3h, counted from the run's start).
func crisisGraph() *graphs.Graph {
	g := fixtureGraph()
	g.Zones = []graphs.Zone{{ID: "core", Title: "Trusted core"}, {ID: "clinical", Title: "Care"}, {ID: "admin", Title: "Administration"}}
	zone := map[string]string{"network": "core", "san": "core", "ad": "core", "hypervisor": "core", "pmsi": "admin", "pmsi-signoff": "admin"}
	for _, n := range g.Nodes {
		n.Zone = zone[n.ID]
		if n.Zone == "" {
			n.Zone = "clinical"
		}
		switch n.ID {
		case "lis":
			n.Owner, n.Contact, n.Runbook = "Dr. Martin (biologist)", "+33 1 23 45 67 89", "https://wiki.chsf.example/runbooks/lis"
		case "dpi":
			n.Owner, n.Runbook = "DPI team", "/srv/runbooks/dpi.pdf"
		case "pmsi-signoff":
			n.Owner, n.Runbook = "DIM <script>alert(1)</script>", "javascript:alert(1)"
		}
	}
	g.Defaults.RTO = map[graphs.Criticality]time.Duration{graphs.CriticalityVital: time.Hour, graphs.CriticalityHigh: 3 * time.Hour}
	return g
}

// mustCrisisModel reads the fixture run back with crisisGraph.
func mustCrisisModel(t *testing.T) *view.Model {
	t.Helper()
	path, runID := mustFixtureStore(t, fixtureKind{})
	s, err := state.Open(path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run, _ := s.Run(runID)
	nodes, _ := s.Nodes(runID)
	var journal []state.Entry
	if err := s.Journal(runID, 0, func(e state.Entry) error { journal = append(journal, e); return nil }); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Verify(runID)
	return view.New(view.Input{Run: run, Nodes: nodes, Journal: journal, Verify: &v, Graph: crisisGraph(), Now: at(140)})
}

// TestReportDeadlinesAndOwners: the deadlines of the report are those of
// the crisis view status shows (same statuses, targets, projected and
// actual ends), listed what needs action first in HTML and Markdown, with
// each node's owner, contact and runbook (a runbook link only for http(s)
// URLs, everything escaped).
func TestReportDeadlinesAndOwners(t *testing.T) {
	m := mustCrisisModel(t)
	r := FromModel(m, Options{})
	cv, err := crisis.Build(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Deadlines) != len(cv.Deadlines) || len(r.Deadlines) != 10 {
		t.Fatalf("%d deadlines, crisis view has %d, want 10 (vital and high nodes)", len(r.Deadlines), len(cv.Deadlines))
	}
	for i, d := range cv.Deadlines {
		got := r.Deadlines[i]
		if got.NodeID != d.Node || got.Status != string(d.Status) || !got.Target.Equal(d.Target) ||
			!got.Projected.Equal(d.Projected) || !got.Actual.Equal(d.Actual) || got.RTOSeconds != d.RTO.Seconds() {
			t.Errorf("deadline %d: report %+v, status's %+v", i, got, d)
		}
	}
	want := map[string]string{"network": "met", "hypervisor": "met", "pharmacy": "missed", "dpi": "missed", "lis": "late", "paper-reentry": "met"}
	for _, d := range r.Deadlines {
		if w, ok := want[d.NodeID]; ok && d.Status != w {
			t.Errorf("deadline of %s: %s, want %s", d.NodeID, d.Status, w)
		}
	}
	if !r.DeadlinesFrom.Equal(t0) || r.DeadlineCounts["late"] != cv.DeadlineCount["late"] || r.DeadlineCounts["late"] == 0 {
		t.Errorf("deadlines from %v, counts %v (status: %v)", r.DeadlinesFrom, r.DeadlineCounts, cv.DeadlineCount)
	}

	var h bytes.Buffer
	if err := r.HTML(&h); err != nil {
		t.Fatal(err)
	}
	html := h.String()
	for _, w := range []string{
		`<section id="deadlines">`,
		"Counted from the run&#39;s start, <b>2026-11-28 08:00:00</b>: " + r.deadlineCounts() + ".",
		`<tr class="deadline" data-node="lis" data-status="late"><td><b>lis</b></td><td>vital</td><td class="num">1h</td>` +
			"\n" + `<td>2026-11-28 09:00:00</td><td>2026-11-28 10:20:00</td><td>—</td><td><span class="dl d-late">late</span></td>`,
		`<tr class="deadline" data-node="dpi" data-status="missed"><td><b>dpi</b></td><td>vital</td><td class="num">1h</td>` + "\n" + `<td>2026-11-28 09:00:00</td><td>—</td><td>2026-11-28 09:41:00</td><td><span class="dl d-missed">missed</span></td>`,
		`owner <b>Dr. Martin (biologist)</b> · &#43;33 1 23 45 67 89 · runbook <a href="https://wiki.chsf.example/runbooks/lis">https://wiki.chsf.example/runbooks/lis</a>`,
		`owner <b>DPI team</b> · runbook <code>/srv/runbooks/dpi.pdf</code>`,
		`owner <b>DIM &lt;script&gt;alert(1)&lt;/script&gt;</b> · runbook <code>javascript:alert(1)</code>`,
		`<span class="who">zone clinical</span>`,
	} {
		if !strings.Contains(html, w) {
			t.Errorf("HTML lacks\n %s", w)
		}
	}
	if strings.Contains(html, `href="javascript`) || strings.Contains(html, "<script>alert") {
		t.Errorf("HTML holds a javascript: link or a raw script")
	}
	// What needs action first: the late node heads the table, met ones end it.
	dl := html[strings.Index(html, `<section id="deadlines">`):]
	dl = dl[:strings.Index(dl, "</section>")]
	if first := strings.Index(dl, `data-status=`); !strings.HasPrefix(dl[first:], `data-status="late"`) ||
		strings.Index(dl, `data-status="met"`) < strings.LastIndex(dl, `data-status="missed"`) {
		t.Errorf("deadlines not listed late first, met last:\n%s", dl)
	}
	// The failure and the waiting gate say who to call.
	fail := html[strings.Index(html, `<tr class="failure" data-node="lis">`):]
	if !strings.Contains(fail[:strings.Index(fail, "</tr>")], "Dr. Martin (biologist)") {
		t.Errorf("the failure of lis does not say who to call")
	}
	wait := html[strings.Index(html, `<tr class="waiting" data-node="pmsi-signoff">`):]
	if !strings.Contains(wait[:strings.Index(wait, "</tr>")], `data-owner="DIM &lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("the waiting gate does not say who to call")
	}

	var md bytes.Buffer
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	mdOut := md.String()
	for _, w := range []string{
		"## Deadlines (RTO)\n\nCounted from the run's start, 2026-11-28 08:00:00: " + r.deadlineCounts() + ".\n\n" +
			"| Node | Criticality | RTO | Target | Projected end | Actual end | Status | Owner |\n|---|---|---:|---|---|---|---|---|\n" +
			"| lis | vital | 1h | 2026-11-28 09:00:00 | 2026-11-28 10:20:00 | — | **late** | Dr. Martin (biologist) · +33 1 23 45 67 89 · https://wiki.chsf.example/runbooks/lis |\n",
		"| dpi | vital | 1h | 2026-11-28 09:00:00 | — | 2026-11-28 09:41:00 | **missed** | DPI team · /srv/runbooks/dpi.pdf |\n",
		"| network | vital | 1h | 2026-11-28 09:00:00 | — | 2026-11-28 08:12:00 | met | — |\n",
		"| lab-middleware, lis-to-dpi | Dr. Martin (biologist) · +33 1 23 45 67 89 · https://wiki.chsf.example/runbooks/lis |\n",
		"| **pmsi-signoff** | data | low | 2026-11-28 09:52:06 | DIM &lt;script>alert(1)&lt;/script> · javascript:alert(1) |\n",
		"| pmsi | ✓ succeeded | application | low | admin | 4 |",
	} {
		if !strings.Contains(mdOut, w) {
			t.Errorf("Markdown lacks\n %s\ngot:\n%s", w, mdOut)
		}
	}

	var js bytes.Buffer
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Deadlines []Deadline     `json:"deadlines"`
		Counts    map[string]int `json:"deadline_counts"`
		Nodes     []Node         `json:"nodes"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Deadlines) != 10 || back.Deadlines[0].RTO != "1h" || back.Counts["late"] != r.DeadlineCounts["late"] {
		t.Errorf("JSON deadlines %+v counts %v", back.Deadlines, back.Counts)
	}
	for _, n := range back.Nodes {
		if n.ID == "lis" && (n.Zone != "clinical" || n.Owner != "Dr. Martin (biologist)" || n.Runbook == "") {
			t.Errorf("JSON node lis %+v", n)
		}
	}
}

// TestGraphZoneClusters: with trust zones, the graph picture draws one
// band per zone, most trusted on top, each holding exactly its zone's
// nodes; the HTML draws the bands with their titles.
func TestGraphZoneClusters(t *testing.T) {
	m := mustCrisisModel(t)
	r := FromModel(m, Options{})
	v := layoutGraph(r.Nodes, r.Zones)
	if len(v.Zones) != 3 || v.Zones[0].ID != "core" || v.Zones[1].ID != "clinical" || v.Zones[2].ID != "admin" {
		t.Fatalf("zone bands %+v, want core, clinical, admin", v.Zones)
	}
	for k := 1; k < len(v.Zones); k++ {
		if v.Zones[k].Y < v.Zones[k-1].Y+v.Zones[k-1].H {
			t.Errorf("band %s overlaps band %s", v.Zones[k].ID, v.Zones[k-1].ID)
		}
	}
	zoneOf := map[string]string{}
	for _, n := range r.Nodes {
		zoneOf[n.ID] = n.Zone
	}
	for _, b := range v.Nodes {
		var in []string
		for _, z := range v.Zones {
			if b.X >= z.X && b.X+gBoxW <= z.X+z.W && b.Y >= z.Y+gZoneHead && b.Y+gBoxH <= z.Y+z.H {
				in = append(in, z.ID)
			}
		}
		if len(in) != 1 || in[0] != zoneOf[b.ID] {
			t.Errorf("box %s (zone %s) at (%d,%d) lies in bands %v", b.ID, zoneOf[b.ID], b.X, b.Y, in)
		}
		if b.Y+gBoxH > v.Height {
			t.Errorf("box %s below the drawing", b.ID)
		}
	}
	var h bytes.Buffer
	if err := r.HTML(&h); err != nil {
		t.Fatal(err)
	}
	html := h.String()
	core := strings.Index(html, `<g class="zone" data-zone="core"><rect x="6" y="34" width="`)
	clinical := strings.Index(html, `<g class="zone" data-zone="clinical">`)
	admin := strings.Index(html, `<g class="zone" data-zone="admin">`)
	if core < 0 || clinical < core || admin < clinical {
		t.Errorf("HTML zone clusters at %d, %d, %d; want core, clinical, admin in order", core, clinical, admin)
	}
	for _, w := range []string{">zone 1: core — Trusted core · not certified</text>", "3 trust zones drawn as bands"} {
		if !strings.Contains(html, w) {
			t.Errorf("HTML lacks %q", w)
		}
	}
	// Without zones: no band, the layout as before.
	plain := mustFixture(t)
	if pv := layoutGraph(plain.Nodes, plain.Zones); len(pv.Zones) != 0 {
		t.Errorf("%d bands without zones", len(pv.Zones))
	}
}
