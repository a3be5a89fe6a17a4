package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
	"github.com/reprise-si/reprise/internal/web"
)

const agentsGraph = `version: 1
name: clinic
zones:
  - {id: clinical, title: Care}
nodes:
  - {id: dpi, kind: application, plugin: noop, zone: clinical, title: "Patient record"}
  - {id: pharmacy, kind: application, plugin: noop, zone: clinical}
`

// TestBrowserAgentsPanel: a run on a real 3-member etcd cluster whose
// steps all go to agents (a real coordinator: engine and cluster
// Dispatcher) is watched in chromium. With no agent, the run page says in
// a red banner and in its agents panel that zone clinical's 2 steps wait
// with no agent, and which command starts one (GET /api/v1/runs/{run}
// too, in "agents"). A real agent then
// registers: the panel shows it, then the 2 steps in flight on it, and the
// banner goes, without a reload (no journal entry says an agent came: the
// page learns it from the events stream's "agents" event).
func TestBrowserAgentsPanel(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	c := etcdtest.Start(t, 3)
	u, err := etcdconn.Parse(c.URL("agents/reprise"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := etcdstate.Open(ctx, u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	op, tok, err := auth.NewOperator("wall", auth.RoleViewer, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutOperator(op); err != nil {
		t.Fatal(err)
	}
	k := cluster.NewKeys(u.Root())
	g := enginetest.MustGraph(t, t.TempDir(), agentsGraph)

	// The coordinator: every step to the agents (none yet).
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(t), Keys: k, Graph: g, AgentsOnly: true,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Name: "coord-wall",
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	defer d.Close()
	e := engine.New(st, d, engine.Options{Parallelism: 8})
	done := make(chan engine.Result, 1)
	go func() {
		res, err := e.Start(ctx, g)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var runID string
	for i := 0; runID == "" && i < 500; i++ {
		runID = e.LiveRun()
		time.Sleep(20 * time.Millisecond)
	}
	if runID == "" {
		t.Fatal("the run did not start")
	}

	s, err := web.New(web.Options{StatePath: u.String(), Backend: st, Live: e.LiveRun, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	shots := screenshotDir(t)
	alloc := browserAlloc(t, ctx, chromium, 1400, 1000)
	bctx, cancelB := chromedp.NewContext(alloc)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), tok), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#operator"))); err != nil {
		t.Fatalf("log in: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/runs/"+runID), chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("live").innerText`))
			t.Fatalf("%s: %v\npage:\n%s", what, err, html)
		}
	}
	text := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}

	// No agent: the banner and the zone's row say so. The steps are
	// written for the agents a moment after they start: the page may
	// need an update for that too.
	poll("the NO AGENT banner", `(document.querySelector('.no-agent-banner[data-zone="clinical"]') || {}).textContent === `+
		"\"NO AGENT · zone clinical 2 steps waiting, no agent of this protocol registered — start `reprise agent --zone clinical` on a machine of the zone\"")
	if row := text(`document.querySelector('#agents tr.zone.no-agent[data-zone="clinical"]').textContent`); row != "zone clinicalNO AGENT · 2 step(s) waiting · 2 nodes" {
		t.Errorf("zone row without agent: %q", row)
	}
	if shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(shots, "agents-none.png"), shot, 0o644)
	}
	// The API says the same, as status --json.
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/runs/"+runID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Agents *cluster.AgentView `json:"agents"`
	}
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil || api.Agents == nil || len(api.Agents.Zones) != 1 || api.Agents.Zones[0].Waiting != 2 ||
		!strings.HasPrefix(api.Agents.Zones[0].Alert, "2 steps waiting, no agent of this protocol registered") {
		t.Errorf("API run without agent: %v %+v", err, api.Agents)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.reloadMarker = true`)); err != nil {
		t.Fatal(err)
	}

	// A real agent of the zone registers and takes both steps (held on
	// its host until released).
	agentHost := &enginetest.FakeHost{OnRestore: func(ctx context.Context, _ step.Request, _ func(step.Event)) (step.Result, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	a := cluster.NewAgent(cluster.AgentOptions{Client: c.Client(t), Keys: k, Name: "clin-1", Zone: "clinical", Slots: 4, TTL: 2 * time.Second,
		NewHost: func(*graphs.Graph, *zap.Logger) step.Host { return agentHost }, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	drain, stopDrain := context.WithCancel(context.Background())
	hard, stopHard := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(drain, hard) }()
	defer func() { stopDrain(); stopHard(); <-agentDone }()

	poll("clin-1 in the panel with 2 steps in flight", `(function () {
		var r = document.querySelector('#agents tr.agent[data-agent="clin-1"]');
		return r !== null && r.textContent.indexOf("2 in flight") >= 0 && document.querySelector('.no-agent-banner') === null;
	})()`)
	if row := text(`document.querySelector('#agents tr.zone[data-zone="clinical"]').textContent`); row != "zone clinical1 agent (2 nodes)" {
		t.Errorf("zone row with clin-1: %q", row)
	}
	if row := text(`document.querySelector('#agents tr.agent[data-agent="clin-1"]').textContent`); !strings.HasPrefix(row, "clin-1") || !strings.HasSuffix(row, "4 slots2 in flightready") {
		t.Errorf("clin-1's row: %q", row)
	}
	if marker := text(`String(window.reloadMarker === true)`); marker != "true" {
		t.Error("the page was reloaded: want the panel updated in place")
	}

	// A server that sees no live engine (another machine's: the engine of
	// this test is in the election of no graph): the run, recorded
	// running, has no coordinator, and its page says so.
	s2, err := web.New(web.Options{StatePath: u.String(), Backend: st, Live: func() string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(s2)
	defer ts2.Close()
	defer s2.Close()
	jar, _ := cookiejar.New(nil)
	wall := &http.Client{Jar: jar}
	if resp, err := wall.PostForm(ts2.URL+"/login", url.Values{"token": {tok}}); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("log in: %v %v", resp, err)
	}
	page := func() string {
		t.Helper()
		resp, err := wall.Get(ts2.URL + "/runs/" + runID)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if p := page(); !strings.Contains(p, `<tr class="coordinator none no-agent"><th>coordinator</th><td colspan="4"><b>NONE</b> leads this run`) {
		t.Errorf("the page of a running run no coordinator leads lacks the NONE row:\n%s", p)
	}

	// A coordinator takes the graph's election, then resigns: the panel
	// names it, then drops it, without a reload.
	lead, err := cluster.Elect(ctx, cluster.ElectOptions{Client: c.Client(t), Keys: k, Graph: g.Name, Name: "coord-wall", TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	poll("the coordinator in the panel", `(function () {
		var r = document.querySelector('#agents tr.coordinator.leads[data-coordinator="coord-wall"]');
		return r !== null && r.textContent.indexOf("coordinatorcoord-wall") === 0;
	})()`)
	if p := page(); !strings.Contains(p, `data-coordinator="coord-wall"`) || strings.Contains(p, "NONE</b> leads") {
		t.Errorf("the page of a run coord-wall leads:\n%s", p)
	}
	lead.Resign()
	poll("the coordinator gone from the panel", `document.querySelector('#agents tr.coordinator') === null`)
	if marker := text(`String(window.reloadMarker === true)`); marker != "true" {
		t.Error("the page was reloaded: want the coordinator's row updated in place")
	}
	if shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(shots, "agents.png"), shot, 0o644)
	}
	close(release)
	select {
	case res := <-done:
		if res.Status != state.RunSucceeded {
			t.Errorf("run %s", res.Status)
		}
	case <-ctx.Done():
		t.Fatal("the run did not finish once its steps were released")
	}
	t.Logf("screenshots in %s", shots)
}

// TestAgentsPanelNotOnStateFile: on a state file, the run page has no
// agents panel and no banner, the API no "agents".
func TestAgentsPanelNotOnStateFile(t *testing.T) {
	f := newFixture(t)
	code, body, _ := get(t, f.login("vic"), f.srv.URL+"/runs/"+f.run)
	if code != 200 || !strings.Contains(body, `id="done"`) {
		t.Fatalf("run page: %d\n%s", code, body)
	}
	for _, no := range []string{`id="agents"`, "no-agent-banner", "NO AGENT", "Agents"} {
		if strings.Contains(body, no) {
			t.Errorf("run page on a state file has %q", no)
		}
	}
	if _, api := f.call("vic", "GET", "/api/v1/runs/"+f.run, ""); strings.Contains(api, `"agents`) {
		t.Errorf("API run on a state file has agents:\n%s", api)
	}
}
