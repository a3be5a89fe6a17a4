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
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/web"
)

const browserGraph = `version: 1
name: hospital-lite
defaults: {approvals: {vital: 2}}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, title: "Active Directory", owner: "IT lead"}
  - {id: sql, kind: infrastructure, plugin: noop, depends_on: [ad], title: "SQL cluster"}
  - {id: lis, kind: application, plugin: noop, depends_on: [sql], title: "Laboratory system"}
  - {id: lab-reentry, kind: data, plugin: manual, depends_on: [lis], owner: "Lab manager", contact: "+33 1 00 00 00 01", runbook: "/srv/runbooks/lab.md"}
  - {id: lab-results, kind: application, plugin: noop, criticality: vital, depends_on: [lab-reentry]}
`

// TestBrowser drives the dashboard in Debian's chromium: two operators log
// in in two browser contexts, watch a live run progress without reload,
// approve a four-eyes gate one after the other, and both names show on the
// journal page. Screenshots go to $REPRISE_SCREENSHOT_DIR (else a temp dir).
func TestBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, browserGraph)
	st := enginetest.MustStore(t, dir)
	tokens := map[string]string{}
	for _, n := range []string{"ann", "bob"} {
		op, tok, err := auth.NewOperator(n, auth.RoleApprover, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutOperator(op); err != nil {
			t.Fatal(err)
		}
		tokens[n] = tok
	}
	release := make(chan struct{})
	h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		switch {
		case req.Plugin == "manual":
			return step.Result{Status: step.Waiting, Message: "paper results typed in?"}, nil
		case req.NodeID == "sql":
			select { // held until the browser watches
			case <-release:
			case <-ctx.Done():
			}
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	e := engine.New(st, h, engine.Options{Wait: true})
	srvCtl, err := control.Listen(control.SocketPath(st.Path()), control.Backend{Store: st, Actions: e, Live: e.LiveRun})
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
	defer func() {
		select {
		case <-release:
		default:
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
	alloc := browserAlloc(t, context.Background(), chromium, 1400, 1000)
	annCtx, cancelAnn := chromedp.NewContext(alloc)
	defer cancelAnn()
	annCtx, cancelT := context.WithTimeout(annCtx, 240*time.Second)
	defer cancelT()
	login := func(ctx context.Context, who string) error {
		return chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), tokens[who]), chromedp.Click(chromedp.CSS("#login")),
			chromedp.WaitVisible(chromedp.CSS("#operator")))
	}
	text := func(ctx context.Context, sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	if err := login(annCtx, "ann"); err != nil {
		t.Fatalf("ann logs in: %v", err)
	}
	// The overview, then progress without reload: a marker set on the
	// page survives the update.
	if err := chromedp.Do(annCtx, chromedp.Navigate(ts.URL+"/runs/"+runID), chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}
	before := text(annCtx, "#done")
	if _, err := chromedp.Run(annCtx, chromedp.Evaluate[bool](`window.reloadMarker = true`)); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := chromedp.Run(annCtx, chromedp.Poll[bool](`document.getElementById("gates") !== null && document.getElementById("gates").textContent === "1"`,
		chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("the page did not follow the run: %v (done %q)", err, before)
	}
	after := text(annCtx, "#done")
	marker, err := chromedp.Run(annCtx, chromedp.Evaluate[bool](`window.reloadMarker === true`))
	if err != nil || !marker || before == after {
		t.Errorf("progress: %q → %q, marker kept %v %v (want an update without reload)", before, after, marker, err)
	}
	if overview, err := chromedp.Run(annCtx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(shots, "dashboard.png"), overview, 0o644)
	}
	// ann approves: 1 of 2.
	if err := chromedp.Do(annCtx, chromedp.Navigate(ts.URL+"/runs/"+runID+"/nodes/lab-reentry"), chromedp.WaitVisible(chromedp.CSS("#approve")),
		chromedp.SendKeys(chromedp.CSS("#comment"), "samples match the paper log"), chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#msg"))); err != nil {
		t.Fatalf("ann approves: %v", err)
	}
	msg := text(annCtx, "#msg")
	if !strings.Contains(msg, "1 of 2") {
		t.Errorf("after ann: %q", msg)
	}
	// bob, in another browser context (his own cookies), opens the gate.
	bobCtx, cancelBob := chromedp.NewContext(annCtx, chromedp.WithNewBrowserContext())
	defer cancelBob()
	if err := login(bobCtx, "bob"); err != nil {
		t.Fatalf("bob logs in: %v", err)
	}
	if err := chromedp.Do(bobCtx, chromedp.Navigate(ts.URL+"/runs/"+runID+"/nodes/lab-reentry"),
		chromedp.WaitVisible(chromedp.CSS("#approve"))); err != nil {
		t.Fatalf("bob opens the gate: %v", err)
	}
	who := text(bobCtx, "#operator")
	if err := chromedp.Do(bobCtx, chromedp.SendKeys(chromedp.CSS("#comment"), "second check"),
		chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#msg"))); err != nil {
		t.Fatalf("bob approves: %v", err)
	}
	msg = text(bobCtx, "#msg")
	if who != "bob" || !strings.Contains(msg, "approved by bob") {
		t.Errorf("after bob (%s): %q", who, msg)
	}
	select {
	case res := <-done:
		if res.Status != state.RunSucceeded {
			t.Errorf("run %s", res.Status)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the run did not finish after the second approval")
	}
	if err := chromedp.Do(bobCtx, chromedp.Navigate(ts.URL+"/runs/"+runID+"/journal"), chromedp.WaitVisible(chromedp.CSS("#journal"))); err != nil {
		t.Fatal(err)
	}
	byCells, err := chromedp.Run(bobCtx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#journal td.by")).map(td => td.textContent).join(",")`))
	if err != nil {
		t.Fatal(err)
	}
	journal, err := chromedp.Run(bobCtx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(shots, "journal.png"), journal, 0o644)
	if !strings.Contains(byCells, "ann") || !strings.Contains(byCells, "bob") {
		t.Errorf("journal page approvers: %q", byCells)
	}
	t.Logf("screenshots in %s", shots)
}
