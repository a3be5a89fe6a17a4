package web_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/web"
)

// TestGraphCache: a run's pages parse its graph snapshot once, however
// many pages and viewers (concurrently, under -race); a resume with an
// edited graph stores a new snapshot, and the next page shows the edit.
func TestGraphCache(t *testing.T) {
	f := newFixture(t)
	c := f.login("vic")
	page := func(path string) string {
		t.Helper()
		resp, err := c.Get(f.srv.URL + path)
		if err != nil {
			t.Error(err) // not Fatal: called from goroutines
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	run := "/runs/" + f.run
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range []string{"", "/graph", "/timeline", "/nodes/lab", "/journal"} {
				page(run + p)
			}
		}()
	}
	wg.Wait()
	if n := web.Parses(f.server); n != 1 {
		t.Errorf("%d parses for 48 pages of one run, want 1", n)
	}
	if strings.Contains(page(run+"/nodes/lab"), "Laboratory v2") {
		t.Fatal("the title is there before the edit")
	}
	// Resume with the graph edited: lab gets a title (metadata only).
	st, err := state.Open(f.path, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	edited := enginetest.MustGraph(t, t.TempDir(), strings.Replace(webGraph,
		"{id: lab, kind: application,", `{id: lab, title: "Laboratory v2", kind: application,`, 1))
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.Plugin == "manual" {
			return step.Result{Status: step.Waiting, Message: "sign"}, nil
		}
		return step.Result{Status: step.Failed, Message: "still unreadable"}, nil
	}}
	if _, err := engine.New(st, h, engine.Options{}).Resume(context.Background(), f.run, edited); err != nil {
		st.Close()
		t.Fatal(err)
	}
	st.Close()
	// Pages of the same quarter second share one read of the run: a change
	// made by another process shows after it.
	time.Sleep(300 * time.Millisecond)
	if body := page(run + "/nodes/lab"); !strings.Contains(body, "Laboratory v2") {
		t.Error("after a resume with an edited graph, the node page does not show the new title")
	}
	page(run)
	page(run + "/graph")
	if n := web.Parses(f.server); n != 2 {
		t.Errorf("%d parses after one edit, want 2", n)
	}
}

// TestSharedLoads: twenty screens asking for the overview at the same
// moment share a few reads of the run, not twenty; an approval through
// the dashboard shows on the very next page.
func TestSharedLoads(t *testing.T) {
	f := newFixture(t)
	c := f.login("vic")
	before := web.Loads(f.server)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := c.Get(f.srv.URL + "/runs/" + f.run + "?fragment=1")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	close(start)
	wg.Wait()
	if n := web.Loads(f.server) - before; n >= 10 {
		t.Errorf("20 simultaneous overviews read the run %d times", n)
	}
	_, body, _ := get(t, c, f.srv.URL+"/runs/"+f.run+"/nodes/gate")
	if strings.Contains(body, "ann at") {
		t.Fatal("ann approved already")
	}
	f.want("ann", "POST", "/api/v1/runs/"+f.run+"/nodes/gate/approve", `{"comment":"seen"}`, 200, "1 of 2")
	if _, body, _ = get(t, c, f.srv.URL+"/runs/"+f.run+"/nodes/gate"); !strings.Contains(body, "ann at") {
		t.Error("the page right after the approval does not show it")
	}
}
