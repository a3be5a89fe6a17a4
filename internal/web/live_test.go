package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/anchor"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/buildtest"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/hosttest"
	"github.com/reprise-si/reprise/internal/web"
)

// TestMain lets the test binary serve the built-in plugins: the live runs
// of these tests run their exec steps out of process, as in production.
func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	os.Exit(m.Run())
}

// liveWebGraph keeps its run going (slow waits for the file "go") while
// operators act on it from the dashboard: tape fails until "fixed" exists,
// vault fails for good, gate waits, and care waits for core's
// certification.
const liveWebGraph = `version: 1
name: live-web
defaults: {retries: 0}
zones:
  - {id: core, title: Trusted core}
  - {id: care, title: Care}
nodes:
  - {id: slow, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'while [ ! -f go ]; do sleep 0.05; done']}}
  - {id: ad, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo ad >> ran.txt']}}
  - {id: tape, kind: data, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, zone: core, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
  - {id: vault, kind: data, plugin: exec, zone: core, with: {restore: [sh, -c, 'echo vault >> ran.txt; exit 1']}}
  - {id: vault-check, kind: application, plugin: exec, zone: core, depends_on: [vault], with: {restore: [sh, -c, 'echo vault-check >> ran.txt']}}
  - {id: gate, kind: data, plugin: manual, zone: core, depends_on: [ad]}
  - {id: dpi, kind: application, plugin: exec, zone: care, depends_on: [ad], with: {restore: [sh, -c, 'echo dpi >> ran.txt']}}
`

// addOperators stores an operator per role and returns their tokens.
func addOperators(t *testing.T, st *state.Store) map[string]string {
	t.Helper()
	tokens := map[string]string{}
	for name, role := range map[string]auth.Role{"vic": auth.RoleViewer, "otto": auth.RoleOperator, "ann": auth.RoleApprover, "root": auth.RoleAdmin} {
		op, tok, err := auth.NewOperator(name, role, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutOperator(op); err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
	}
	return tokens
}

func realHost(t *testing.T, g *graphs.Graph) *host.Host {
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand})
	t.Cleanup(func() { h.Close() })
	return h
}

// nodeState reads a node's state through the API.
func (f *fixture) nodeState(node string) string {
	f.t.Helper()
	code, b := f.call("vic", "GET", "/api/v1/runs/"+f.run+"/nodes/"+node, "")
	var n struct {
		State string `json:"state"`
	}
	if code != 200 || json.Unmarshal([]byte(b), &n) != nil {
		f.t.Fatalf("GET node %s: %d %s", node, code, b)
	}
	return n.State
}

func (f *fixture) waitNode(node, want string) {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := f.nodeState(node)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("node %s: %s, want %s", node, got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// byOf returns "type node/zone" → who, from the run's journal.
func byOf(t *testing.T, st interface {
	Journal(string, uint64, func(state.Entry) error) error
}, runID string) map[string]string {
	t.Helper()
	by := map[string]string{}
	if err := st.Journal(runID, 0, func(e state.Entry) error {
		if e.By != "" {
			by[string(e.Type)+" "+e.NodeID+e.Data["zone"]] = e.By
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return by
}

// TestWebActionsOnLiveRun: retry, mark, approve and certify through the
// API reach a run going on in another engine (its control socket), with
// the roles of docs/API.md; the run goes on from each and succeeds, and
// the journal names the authenticated operators.
func TestWebActionsOnLiveRun(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, liveWebGraph)
	st := enginetest.MustStore(t, dir)
	f := &fixture{t: t, path: st.Path(), tokens: addOperators(t, st)}
	eng := engine.New(st, realHost(t, g), engine.Options{Wait: true, Parallelism: 4})
	ctl, err := control.Listen(control.SocketPath(st.Path()), control.Backend{Store: st, Actions: eng, Live: eng.LiveRun})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	done := make(chan engine.Result, 1)
	go func() {
		res, err := eng.Start(context.Background(), g)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	finished := false
	defer func() {
		if !finished {
			eng.Drain()
			_ = os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
			<-done
		}
	}()
	for i := 0; f.run == "" && i < 3000; i++ {
		f.run = eng.LiveRun()
		time.Sleep(10 * time.Millisecond)
	}
	s, err := web.New(web.Options{StatePath: st.Path(), Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.server = httptest.NewServer(s), s
	defer func() { s.Close(); f.srv.Close() }()
	run := "/api/v1/runs/" + f.run
	f.waitNode("tape", "failed")
	f.waitNode("vault", "failed")
	f.waitNode("gate", "waiting")

	f.want("vic", "POST", run+"/zones/core/certify", `{"comment":"ok"}`, 403, "role viewer may not certify")
	f.want("otto", "POST", run+"/zones/core/certify", `{"comment":"ok"}`, 403, "role operator may not certify")
	f.want("ann", "POST", run+"/nodes/vault/mark", `{"reason":"x"}`, 403, "role approver may not mark")
	f.want("otto", "POST", run+"/nodes/slow/mark", `{"reason":"done by hand"}`, 409, "node is running")
	f.want("otto", "POST", run+"/nodes/slow/retry", ``, 409, "node is running")
	f.want("ann", "POST", run+"/zones/core/certify", `{"comment":"checked"}`, 409, "not done")
	f.want("ann", "POST", run+"/zones/nope/certify", `{"comment":"checked"}`, 404, "zone not found (want one of core, care)")
	f.want("ann", "POST", run+"/zones/core/certify", `{}`, 400, "comment saying what was checked")

	if err := os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.want("otto", "POST", run+"/nodes/tape/retry", ``, 200, "it runs again now (the run is going on)")
	f.waitNode("db", "succeeded")
	f.want("otto", "POST", run+"/nodes/vault/mark", `{"reason":"restored from the offsite copy"}`, 200, "starts now (the run is going on)")
	f.waitNode("vault-check", "succeeded")
	f.want("ann", "POST", run+"/nodes/gate/approve", `{"comment":"signed"}`, 200, "node gate approved by ann")
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.waitNode("slow", "succeeded")
	// Certified from the run's page: its form shows once the zone is done.
	root := f.login("root")
	var page string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(page, `id="certify-core"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the run page never offered to certify core:\n%s", page)
		}
		_, page, _ = get(t, root, f.srv.URL+"/runs/"+f.run)
	}
	if strings.Contains(page, `id="resume"`) {
		t.Errorf("the page of a run going on offers to resume it")
	}
	tok := csrfRE.FindStringSubmatch(page)
	resp, err := root.PostForm(f.srv.URL+"/runs/"+f.run+"/zones/core/certify", url.Values{"comment": {"AD and the vault checked clean"}, "csrf": {tok[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "start+now+%28the+run+is+going+on%29") {
		t.Errorf("certify form: %d → %q", resp.StatusCode, loc)
	}
	select {
	case res := <-done:
		finished = true
		if res.Status != state.RunSucceeded {
			t.Fatalf("run ended %+v, want succeeded", res)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not finish after core was certified")
	}
	by := byOf(t, st, f.run)
	for k, want := range map[string]string{"reset tape": "otto", "marked vault": "otto", "approved gate": "ann", "zone-certified core": "root"} {
		if by[k] != want {
			t.Errorf("journal %q by %q, want %q (all %v)", k, by[k], want, by)
		}
	}
}

var buildOnce sync.Once
var buildErr error

// repriseBinary builds bin/reprise (buildtest), which a resume started
// from the dashboard runs.
func repriseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { buildErr = buildtest.Build("reprise") })
	if buildErr != nil {
		t.Skipf("cannot build bin/reprise: %v", buildErr)
	}
	root, err := buildtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "bin", "reprise")
}

// TestWebResume: an operator resumes a stopped run from the API. The
// resume runs as its own process (bin/reprise resume --wait --by), holds
// the state file and serves its control socket: the run goes on (a gate
// approved from the dashboard reaches it) and succeeds; the journal names
// who resumed and who approved. Roles, an unknown run, a resume of a run
// going on or done are refused.
func TestWebResume(t *testing.T) {
	bin := repriseBinary(t)
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: resume-web
defaults: {retries: 0}
nodes:
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
  - {id: gate, kind: data, plugin: manual, depends_on: [db]}
  - {id: lab, kind: application, plugin: exec, depends_on: [gate], with: {restore: [sh, -c, 'echo lab >> ran.txt']}}
`)
	st := enginetest.MustStore(t, dir)
	res, err := engine.New(st, realHost(t, g), engine.Options{}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunFailed {
		t.Fatalf("first session: %+v, %v", res, err)
	}
	f := &fixture{t: t, path: st.Path(), run: res.RunID, tokens: addOperators(t, st)}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logged bytes.Buffer
	s, err := web.New(web.Options{StatePath: f.path, Reprise: bin, Logf: func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logged.WriteString(strings.TrimSpace(strings.ReplaceAll(format, "%", "")) + "\n")
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.server = httptest.NewServer(s), s
	defer func() { s.Close(); f.srv.Close() }()
	run := "/api/v1/runs/" + f.run

	f.want("vic", "POST", run+"/resume", ``, 403, "role viewer may not resume")
	f.want("ann", "POST", run+"/resume", ``, 403, "role approver may not resume")
	f.want("otto", "POST", "/api/v1/runs/nope/resume", ``, 404, "run not found")
	f.want("otto", "POST", run+"/resume", `{bad`, 400, "bad JSON body")
	if _, page, _ := get(t, f.login("vic"), f.srv.URL+"/runs/"+f.run); strings.Contains(page, `id="resume"`) {
		t.Errorf("a viewer is offered to resume")
	}
	if _, page, _ := get(t, f.login("otto"), f.srv.URL+"/runs/"+f.run); !strings.Contains(page, `id="resume"`) {
		t.Errorf("an operator is not offered to resume a stopped run")
	}

	if err := os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := f.want("otto", "POST", run+"/resume", `{"wait": true}`, 202, `"live": true`)
	var out struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(b), &out); err != nil || out.PID == 0 {
		t.Fatalf("resume answer %s: %v", b, err)
	}
	stopped := false
	defer func() {
		if !stopped { // drain the resume process, as Ctrl-C would
			_ = syscall.Kill(out.PID, syscall.SIGINT)
			waitGone(t, out.PID)
		}
	}()
	f.want("root", "POST", run+"/resume", ``, 409, "going on already")
	f.waitNode("gate", "waiting")
	f.want("vic", "GET", "/api/v1/runs", "", 200, `"live": true`)
	f.want("ann", "POST", run+"/nodes/gate/approve", `{"comment":"results checked"}`, 200, "node gate approved by ann")
	f.waitNode("lab", "succeeded")
	waitGone(t, out.PID)
	stopped = true
	f.want("otto", "POST", run+"/resume", ``, 409, "succeeded, nothing to resume")

	r, err := control.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	by := byOf(t, r, f.run)
	if by["run-resumed "] != "otto" || by["approved gate"] != "ann" {
		t.Errorf("journal: %v; want run-resumed by otto, gate approved by ann", by)
	}
	if rep, err := r.Verify(f.run); err != nil || !rep.OK {
		t.Errorf("journal check: %+v, %v", rep, err)
	}
	logMu.Lock()
	if !strings.Contains(logged.String(), "started: pid") || !strings.Contains(logged.String(), "ended") {
		t.Errorf("serve's log of the resume:\n%s", logged.String())
	}
	logMu.Unlock()
}

// waitGone waits for process pid to have ended (and been reaped).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("resume process %d did not end", pid)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// TestWebActionsCheckedAndAnchored: an action taken on the dashboard on a
// stopped run records the new journal head at Options.Anchor; once a node
// record is changed by hand, actions and resumes are refused (409), as a
// resume on the command line is, and nothing is written.
func TestWebActionsCheckedAndAnchored(t *testing.T) {
	bin := repriseBinary(t)
	f := newFixture(t)
	anchors := filepath.Join(filepath.Dir(f.path), "anchors.jsonl")
	s, err := web.New(web.Options{StatePath: f.path, Anchor: anchors, Reprise: bin})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer func() { s.Close(); srv.Close() }()
	f.srv = srv
	run := "/api/v1/runs/" + f.run
	f.want("ann", "POST", run+"/nodes/gate/approve", `{"comment":"checked"}`, 200, "1 of 2")
	as, err := anchor.Read(context.Background(), anchors)
	if err != nil || len(as) != 1 {
		t.Fatalf("anchors after an approval: %+v, %v", as, err)
	}
	st, err := state.Open(f.path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, _ := st.Head(f.run)
	st.Close()
	if as[0].Seq != seq || as[0].Hash != hash {
		t.Errorf("anchor %+v, want the head %d %s", as[0], seq, hash)
	}

	// tape's record turned from failed to succeeded by hand.
	db, err := bolt.Open(f.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte("nodes")).Bucket([]byte(f.run))
		rec := nb.Get([]byte("tape"))
		forged := bytes.Replace(rec, []byte("\x02\x06failed"), []byte("\x02\x09succeeded"), 1)
		if bytes.Equal(forged, rec) {
			t.Fatalf("tape's record holds no failed state: %q", rec)
		}
		return nb.Put([]byte("tape"), forged)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f.want("bob", "POST", run+"/nodes/gate/approve", `{"comment":"confirmed"}`, 409, "does not match its journal")
	f.want("otto", "POST", run+"/nodes/ad/retry", ``, 409, "does not match its journal")
	f.want("otto", "POST", run+"/resume", ``, 409, "does not match its journal")
	if as, _ := anchor.Read(context.Background(), anchors); len(as) != 1 {
		t.Errorf("a refused action was anchored: %+v", as)
	}
}
