package web_test

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/web"
)

const zonedGraph = `version: 1
name: zoned
zones:
  - {id: core, title: Trusted core}
  - {id: clinical, title: Care}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core, title: "Directory <b>"}
  - {id: dns, kind: infrastructure, plugin: noop, zone: core, depends_on: [ad]}
  - {id: tape, kind: data, plugin: exec, zone: core, with: {restore: [false]}}
  - {id: dpi, kind: application, plugin: noop, zone: clinical, depends_on: [dns]}
  - {id: lab, kind: application, plugin: noop, zone: clinical, depends_on: [dpi, tape]}
  - {id: free, kind: application, plugin: noop, zone: clinical}
`

// zonedFixture is a run of zonedGraph (tape failed, so lab is blocked and
// the clinical zone waits for core's certification) served with draw as
// the largest graph drawn node by node.
func zonedFixture(t *testing.T, draw int) (*fixture, *httptest.Server) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, zonedGraph)
	st := enginetest.MustStore(t, dir)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.Plugin == "exec" {
			return step.Result{Status: step.Failed, Message: "tape unreadable"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := engine.New(st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	op, tok, _ := auth.NewOperator("vic", auth.RoleViewer, "test", time.Now())
	if err := st.PutOperator(op); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s, err := web.New(web.Options{StatePath: st.Path(), DrawAtMost: draw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return &fixture{t: t, path: st.Path(), run: res.RunID, srv: srv, server: s, tokens: map[string]string{"vic": tok}}, srv
}

var (
	boxRE  = regexp.MustCompile(`<a class="gn st-([a-z]+)" data-id="([^"]+)"[^>]*href="([^"]+)"><rect x="(\d+)" y="(\d+)"`)
	zoneRE = regexp.MustCompile(`<g class="zone[^"]*" data-zone="([^"]*)"><rect class="zone-box" x="\d+" y="(\d+)" width="\d+" height="(\d+)"`)
)

// TestGraphPage: the drawn graph is an SVG made on the server: a box per
// node coloured by its state and linking to its page, in layers (a node
// right of its dependencies), an edge per dependency, the zones as bands
// in trust order holding their nodes, and a search that lists matches.
func TestGraphPage(t *testing.T) {
	f, _ := zonedFixture(t, 100)
	c := f.login("vic")
	base := "/runs/" + f.run
	code, body, _ := get(t, c, f.srv.URL+base+"/graph")
	if code != 200 {
		t.Fatalf("graph page: %d", code)
	}
	type pos struct {
		state, href string
		x, y        int
	}
	boxes := map[string]pos{}
	for _, m := range boxRE.FindAllStringSubmatch(body, -1) {
		boxes[m[2]] = pos{m[1], m[3], atoi(t, m[4]), atoi(t, m[5])}
	}
	// clinical waits for core's certification: its nodes are held.
	want := map[string]string{"ad": "succeeded", "dns": "succeeded", "tape": "failed", "dpi": "pending", "lab": "blocked", "free": "pending"}
	if len(boxes) != len(want) {
		t.Fatalf("%d boxes, want %d:\n%s", len(boxes), len(want), body)
	}
	for id, st := range want {
		if boxes[id].state != st || boxes[id].href != base+"/nodes/"+id {
			t.Errorf("box %s: %+v, want state %s and a link to its page", id, boxes[id], st)
		}
	}
	for _, e := range [][2]string{{"ad", "dns"}, {"dns", "dpi"}, {"dpi", "lab"}, {"tape", "lab"}} {
		if boxes[e[0]].x >= boxes[e[1]].x {
			t.Errorf("%s is not left of its dependent %s: %+v %+v", e[0], e[1], boxes[e[0]], boxes[e[1]])
		}
		if !strings.Contains(body, `data-from="`+e[0]+`" data-to="`+e[1]+`"`) {
			t.Errorf("no edge %s → %s", e[0], e[1])
		}
	}
	if n := strings.Count(body, `<path class="e"`); n != 4 {
		t.Errorf("%d edges, want 4", n)
	}
	zones := zoneRE.FindAllStringSubmatch(body, -1)
	if len(zones) != 2 || zones[0][1] != "core" || zones[1][1] != "clinical" {
		t.Fatalf("zones %v, want core then clinical", zones)
	}
	inBand := func(id string, z []string) bool {
		y, top, h := boxes[id].y, atoi(t, z[2]), atoi(t, z[3])
		return y > top && y < top+h
	}
	for id, k := range map[string]int{"ad": 0, "dns": 0, "tape": 0, "dpi": 1, "lab": 1, "free": 1} {
		if !inBand(id, zones[k]) {
			t.Errorf("%s is not drawn inside zone %q", id, zones[k][1])
		}
	}
	for _, s := range []string{"zone 1 · core — Trusted core · 2/3 done · open, not certified", "zone 2 · clinical — Care · 0/3 done · waits for the zones above",
		"Directory &lt;b&gt;", `id="search"`, `id="zoom-in"`} {
		if !strings.Contains(body, s) {
			t.Errorf("graph page lacks %q", s)
		}
	}
	// A graph without zones draws no cluster.
	plain := newFixture(t)
	if _, body, _ := get(t, plain.login("vic"), plain.srv.URL+"/runs/"+plain.run+"/graph"); strings.Contains(body, `class="zone`) ||
		len(boxRE.FindAllString(body, -1)) != 4 {
		t.Errorf("graph without zones: %d boxes, zone clusters %v", len(boxRE.FindAllString(body, -1)), strings.Contains(body, `class="zone`))
	}
	// Search without script: ?q= lists the matches, what needs eyes first.
	_, body, _ = get(t, c, f.srv.URL+base+"/graph?q=directory")
	if !strings.Contains(body, `id="matches"`) || !strings.Contains(body, `href="`+base+`/nodes/ad"`) || strings.Contains(body, `class="match st-failed"`) {
		t.Errorf("search for directory: %s", between(body, `<div id="matches">`, `</div>`))
	}
}

// TestGraphPageAggregated: above DrawAtMost nodes the page says it
// aggregates and draws one cell per zone and kind with its counts; a cell
// lists its nodes; ?draw=1 draws every node all the same.
func TestGraphPageAggregated(t *testing.T) {
	f, _ := zonedFixture(t, 3)
	c := f.login("vic")
	base := "/runs/" + f.run
	_, body, _ := get(t, c, f.srv.URL+base+"/graph")
	if !strings.Contains(body, `id="aggregated"`) || !strings.Contains(body, "one cell per zone and kind") {
		t.Fatalf("the page does not say it aggregates:\n%s", body)
	}
	if strings.Contains(body, `class="gn `) {
		t.Error("an aggregated graph draws node boxes")
	}
	cells := regexp.MustCompile(`<a class="cell" data-zone="([^"]*)" data-kind="([^"]*)"`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, m := range cells {
		got = append(got, m[1]+"/"+m[2])
	}
	if strings.Join(got, ",") != "core/infrastructure,core/data,clinical/application" {
		t.Errorf("cells %v", got)
	}
	if !strings.Contains(body, "data · 1 nodes") || !strings.Contains(body, `<rect class="bar st-failed"`) {
		t.Errorf("the data cell does not show its failed node")
	}
	_, body, _ = get(t, c, f.srv.URL+base+"/graph?zone=clinical&kind=application")
	list := between(body, `<div id="matches">`, `</div>`)
	if !strings.Contains(list, "/nodes/lab") || !strings.Contains(list, "/nodes/dpi") || strings.Contains(list, "/nodes/ad") ||
		strings.Index(list, "/nodes/lab") > strings.Index(list, "/nodes/dpi") {
		t.Errorf("the clinical application cell lists %s (want lab, blocked, before dpi)", list)
	}
	_, body, _ = get(t, c, f.srv.URL+base+"/graph?draw=1")
	if n := len(boxRE.FindAllString(body, -1)); n != 6 {
		t.Errorf("?draw=1 drew %d boxes", n)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}
