package web_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/web"
)

const browserZonedGraph = `version: 1
name: hospital-zones
zones:
  - {id: core, title: "Trusted core"}
  - {id: clinical, title: "Care"}
  - {id: admin, title: "Administration"}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core, title: "Active Directory"}
  - {id: dns, kind: infrastructure, plugin: noop, zone: core, depends_on: [ad]}
  - {id: pki, kind: infrastructure, plugin: noop, zone: core, depends_on: [ad]}
  - {id: sql, kind: infrastructure, plugin: noop, zone: core, depends_on: [dns], title: "SQL cluster"}
  - {id: vault, kind: data, plugin: noop, zone: core}
  - {id: dpi, kind: application, plugin: noop, zone: clinical, depends_on: [sql, pki], title: "Patient record"}
  - {id: lis, kind: application, plugin: noop, zone: clinical, depends_on: [sql], title: "Laboratory system"}
  - {id: pacs, kind: application, plugin: noop, zone: clinical, depends_on: [vault, dns]}
  - {id: lab-results, kind: application, plugin: noop, zone: clinical, depends_on: [lis, dpi], criticality: vital}
  - {id: billing, kind: application, plugin: noop, zone: admin, depends_on: [dpi]}
  - {id: hr, kind: application, plugin: noop, zone: admin, depends_on: [ad]}
`

// TestBrowserGraph drives the graph and timeline pages in Debian's
// chromium: the zones show as clusters, a node's colour changes live when
// it finishes (no reload), the search finds a node, and after the core is
// certified and the run resumed the timeline shows the attempts and the
// certification. Screenshots go to $REPRISE_SCREENSHOT_DIR.
func TestBrowserGraph(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, browserZonedGraph)
	st := enginetest.MustStore(t, dir)
	op, tok, err := auth.NewOperator("wall", auth.RoleViewer, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutOperator(op); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "sql" {
			select { // held until the browser watches
			case <-release:
			case <-ctx.Done():
			}
		}
		time.Sleep(40 * time.Millisecond)
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{})
	srvCtl, err := control.Listen(control.SocketPath(st.Path()), control.Backend{Store: st, Live: e.LiveRun})
	if err != nil {
		t.Fatal(err)
	}
	defer srvCtl.Close()
	done := make(chan engine.Result, 1)
	go func() {
		res, err := e.Start(context.Background(), g)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	var runID string
	for i := 0; runID == "" && i < 200; i++ {
		runID = e.LiveRun()
		time.Sleep(20 * time.Millisecond)
	}
	s, err := web.New(web.Options{StatePath: st.Path(), Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	shots := screenshotDir(t)
	alloc := browserAlloc(t, context.Background(), chromium, 1400, 900)
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 240*time.Second)
	defer cancelT()
	js := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(shots, name), png, 0o644)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), tok), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#operator")),
		chromedp.Navigate(ts.URL+"/runs/"+runID+"/graph"), chromedp.WaitVisible(chromedp.CSS("#graph-svg"))); err != nil {
		t.Fatal(err)
	}
	// The zones as clusters, most trusted first, each around its nodes.
	if z := js(`Array.from(document.querySelectorAll("#graph-svg g.zone")).map(g => g.dataset.zone).join(",")`); z != "core,clinical,admin" {
		t.Errorf("zone clusters %q", z)
	}
	inside := js(`(function () {
	  var bad = [];
	  document.querySelectorAll("#graph-svg .gn").forEach(function (a) {
	    var id = a.dataset.id, r = a.querySelector("rect").getBBox();
	    var zone = {ad:"core",dns:"core",pki:"core",sql:"core",vault:"core",dpi:"clinical",lis:"clinical",pacs:"clinical","lab-results":"clinical",billing:"admin",hr:"admin"}[id];
	    var z = document.querySelector('#graph-svg g.zone[data-zone="' + zone + '"] rect').getBBox();
	    if (r.y < z.y || r.y + r.height > z.y + z.height) { bad.push(id); }
	  });
	  return bad.join(",");
	})()`)
	if inside != "" {
		t.Errorf("nodes drawn outside their zone's cluster: %s", inside)
	}
	// A node's colour changes live: sql is running, then succeeds.
	wait("sql running", `document.querySelector('[data-id="sql"]').getAttribute("class").indexOf("st-running") >= 0`)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.reloadMarker = true`)); err != nil {
		t.Fatal(err)
	}
	close(release)
	released = true
	wait("sql turns green without reload", `document.querySelector('[data-id="sql"]').getAttribute("class").indexOf("st-succeeded") >= 0 && window.reloadMarker === true`)
	if fill := js(`getComputedStyle(document.querySelector('[data-id="sql"] rect')).fill`); fill != "rgb(207, 238, 219)" {
		t.Errorf("a succeeded node is painted %s", fill)
	}
	// Search finds a node and centres it.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#search"), "laboratory")); err != nil {
		t.Fatal(err)
	}
	wait("search", `document.querySelectorAll("#graph-svg .gn.hit").length === 1`)
	if hit, n := js(`document.querySelector("#graph-svg .gn.hit").dataset.id`), js(`document.getElementById("search-count").textContent`); hit != "lis" || !strings.HasPrefix(n, "1 found") {
		t.Errorf("search for laboratory: hit %q, %q", hit, n)
	}
	if dim := js(`String(document.querySelectorAll("#graph-svg .gn.dim").length)`); dim != "10" {
		t.Errorf("%s nodes dimmed, want the 10 others", dim)
	}
	if res := <-done; res.RunID != runID {
		t.Fatalf("run %s", res.RunID)
	}
	// The core certified, the run resumed: the clinical zone turns green live.
	st2 := e
	if err := st2.Certify(context.Background(), runID, "core", "ann", "AD and SQL rebuilt from clean media"); err != nil {
		t.Fatal(err)
	}
	go func() {
		if _, err := e.Resume(context.Background(), runID, nil); err != nil {
			t.Error(err)
		}
		done <- engine.Result{}
	}()
	wait("the clinical zone restored live", `document.querySelector('[data-id="lab-results"]').getAttribute("class").indexOf("st-succeeded") >= 0`)
	<-done
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/runs/"+runID+"/graph"), chromedp.WaitVisible(chromedp.CSS("#graph-svg")),
		chromedp.Click(chromedp.CSS("#zoom-fit"))); err != nil {
		t.Fatal(err)
	}
	shot("graph.png")
	// Clicking a node opens its page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-id="dpi"] rect`)), chromedp.WaitVisible(chromedp.CSS("#node-state"))); err != nil {
		t.Fatalf("click on dpi: %v", err)
	}
	if loc := js(`location.pathname`); !strings.HasSuffix(loc, "/nodes/dpi") {
		t.Errorf("clicking dpi opened %s", loc)
	}
	// The timeline: a row per node, bars, the certification marker.
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/runs/"+runID+"/timeline"), chromedp.WaitVisible(chromedp.CSS("#timeline-svg"))); err != nil {
		t.Fatal(err)
	}
	if n := js(`String(document.querySelectorAll("#timeline-svg .tl-row").length)`); n != "9" {
		t.Errorf("%s timeline rows, want 9 (the admin zone is not certified: billing and hr never ran)", n)
	}
	if c := js(`Array.from(document.querySelectorAll("#timeline-svg g.cert")).map(g => g.dataset.zone).join(",")`); c != "core" {
		t.Errorf("certification markers %q", c)
	}
	shot("timeline.png")
	t.Logf("screenshots in %s", shots)
}
