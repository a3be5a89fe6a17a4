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

const timelineGraph = `version: 1
name: timeline
defaults: {retry_delay: 10ms}
zones:
  - {id: core, title: Trusted core}
  - {id: clinical, title: Care}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core}
  - {id: dns, kind: infrastructure, plugin: noop, zone: core, depends_on: [ad]}
  - {id: dpi, kind: application, plugin: exec, zone: clinical, depends_on: [dns], retries: 1, with: {restore: [false]}}
  - {id: idle, kind: application, plugin: noop, zone: clinical, depends_on: [dpi]}
`

var barRE = regexp.MustCompile(`<rect class="bar st-([a-z]+)" data-attempt="(\d+)" x="(\d+)" y="\d+" width="(\d+)"`)

// TestTimelinePage: a row per node that ran, in order of first start, a
// bar per attempt coloured by its outcome (dpi failed twice), nothing for
// a node that never ran, and the zone's certification as a marker between
// the core's work and the clinical zone's.
func TestTimelinePage(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, timelineGraph)
	st := enginetest.MustStore(t, dir)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		time.Sleep(30 * time.Millisecond) // bars with a width
		if req.Plugin == "exec" {
			return step.Result{Status: step.Failed, Message: "database <corrupt>"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{})
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := e.Certify(context.Background(), res.RunID, "core", "ann", "rebuilt from clean media"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := e.Resume(context.Background(), res.RunID, nil); err != nil {
		t.Fatal(err)
	}
	op, tok, _ := auth.NewOperator("vic", auth.RoleViewer, "test", time.Now())
	if err := st.PutOperator(op); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s, err := web.New(web.Options{StatePath: st.Path()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, path: st.Path(), run: res.RunID, tokens: map[string]string{"vic": tok}, server: s}
	f.srv = newServer(t, s)
	code, body, _ := get(t, f.login("vic"), f.srv.URL+"/runs/"+f.run+"/timeline")
	if code != 200 {
		t.Fatalf("timeline: %d", code)
	}
	rows := regexp.MustCompile(`<g class="tl-row" data-id="([^"]+)">`).FindAllStringSubmatch(body, -1)
	var ids []string
	for _, r := range rows {
		ids = append(ids, r[1])
	}
	if strings.Join(ids, ",") != "ad,dns,dpi" {
		t.Errorf("rows %v, want ad, dns, dpi (idle never ran)", ids)
	}
	dpi := between(body, `data-id="dpi"`, `</g>`)
	bars := barRE.FindAllStringSubmatch(dpi, -1)
	if len(bars) != 2 || bars[0][1] != "failed" || bars[1][1] != "failed" || bars[0][2] != "1" || bars[1][2] != "2" {
		t.Fatalf("dpi's bars: %v, want two failed attempts", bars)
	}
	if !strings.Contains(dpi, "database &lt;corrupt&gt;") {
		t.Error("an attempt's error is not in its tooltip, escaped")
	}
	dnsBar := barRE.FindStringSubmatch(between(body, `data-id="dns"`, `</g>`))
	if dnsBar == nil || dnsBar[1] != "succeeded" {
		t.Fatalf("dns's bar: %v", dnsBar)
	}
	cert := regexp.MustCompile(`<g class="cert" data-zone="core"><line x1="(\d+)"`).FindStringSubmatch(body)
	if cert == nil {
		t.Fatalf("no certification marker for core:\n%s", body)
	}
	dnsEnd := atoi(t, dnsBar[3]) + atoi(t, dnsBar[4])
	if at := atoi(t, cert[1]); at < dnsEnd || at > atoi(t, bars[0][3]) {
		t.Errorf("the certification marker (x=%d) is not between dns's end (%d) and dpi's start (%s)", at, dnsEnd, bars[0][3])
	}
	if !strings.Contains(body, "zone core certified by ann") {
		t.Error("the marker does not say who certified")
	}
}

func newServer(t *testing.T, s *web.Server) *httptest.Server {
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return srv
}
