package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/web"
)

const webGraph = `version: 1
name: crisis-web
defaults: {approvals: {vital: 2}, retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, title: "<script>alert('ad')</script></style>", owner: "IT lead"}
  - {id: gate, kind: data, plugin: manual, depends_on: [ad]}
  - {id: lab, kind: application, plugin: noop, criticality: vital, depends_on: [gate]}
  - {id: tape, kind: data, plugin: exec, with: {restore: [false]}}
`

// fixture is a state file with a parked run (gate waiting, tape failed),
// four operators, and a dashboard on a loopback port.
type fixture struct {
	t      *testing.T
	path   string
	run    string
	srv    *httptest.Server
	server *web.Server
	tokens map[string]string
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, webGraph)
	st := enginetest.MustStore(t, dir)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		switch req.Plugin {
		case "manual":
			return step.Result{Status: step.Waiting, Message: "sign"}, nil
		case "exec":
			return step.Result{Status: step.Failed, Message: "tape unreadable <script>alert('tape')</script>"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := engine.New(st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, path: st.Path(), run: res.RunID, tokens: map[string]string{}}
	for name, role := range map[string]auth.Role{"vic": auth.RoleViewer, "otto": auth.RoleOperator, "ann": auth.RoleApprover,
		"bob": auth.RoleApprover, "root": auth.RoleAdmin} {
		op, tok, err := auth.NewOperator(name, role, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutOperator(op); err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = tok
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// A log line holding markup, as a plugin could write it.
	logLine := `{"level":"info","time":"2026-12-01T10:00:00Z","msg":"step output","node":"tape","line":"<script>alert('log')</script>"}` + "\n"
	if err := os.WriteFile(f.path+".log", []byte(logLine), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := web.New(web.Options{StatePath: f.path, Poll: 50 * time.Millisecond, LoginBurst: 3, LoginEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.server = httptest.NewServer(s), s
	t.Cleanup(func() { s.Close(); f.srv.Close() })
	return f
}

// call does an API call as who ("" : no token) and returns code and body.
func (f *fixture) call(who, method, path, body string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if who != "" {
		tok := f.tokens[who]
		if tok == "" {
			tok = who
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) want(who, method, path, body string, code int, contains string) string {
	f.t.Helper()
	got, b := f.call(who, method, path, body)
	if got != code || !strings.Contains(b, contains) {
		f.t.Errorf("%s %s as %q: %d %s\nwant %d with %q", method, path, who, got, b, code, contains)
	}
	return b
}

// TestAPI: every route and status code of docs/API.md on a real server.
func TestAPI(t *testing.T) {
	f := newFixture(t)
	run := "/api/v1/runs/" + f.run
	f.want("", "GET", "/api/v1/runs", "", 401, "missing Authorization")
	f.want("rpr_0123456789abcdef_nope", "GET", "/api/v1/runs", "", 401, "unknown or revoked token")
	f.want("vic", "GET", "/api/v1/runs", "", 200, `"id": "`+f.run+`"`)
	b := f.want("vic", "GET", run, "", 200, `"run": "`+f.run+`"`)
	var sum struct {
		Run   string `json:"run"`
		Total int    `json:"total"`
		Gates []struct{ Node string }
		Count map[string]int `json:"counts"`
	}
	if err := json.Unmarshal([]byte(b), &sum); err != nil || sum.Total != 4 || len(sum.Gates) != 1 || sum.Count["failed"] != 1 {
		t.Errorf("run summary: %+v, %v", sum, err)
	}
	f.want("vic", "GET", run+"/nodes/ad", "", 200, `"owner": "IT lead"`)
	f.want("vic", "GET", "/api/v1/runs/nope", "", 404, "run not found")
	f.want("vic", "GET", run+"/nodes/nope", "", 404, "has no node nope")
	f.want("vic", "GET", "/api/v1/nothing", "", 404, "no such API route")
	f.want("", "GET", "/api/v1/nothing", "", 401, "")
	f.want("vic", "POST", run+"/nodes/gate/approve", `{"comment":"ok"}`, 403, "role viewer may not approve")
	f.want("otto", "POST", run+"/nodes/gate/approve", `{}`, 403, "role operator may not approve")
	f.want("ann", "POST", "/api/v1/runs/nope/nodes/gate/approve", `{}`, 404, "run not found")
	f.want("ann", "POST", run+"/nodes/nope/approve", `{}`, 404, "node not found")
	f.want("ann", "POST", run+"/nodes/ad/approve", `{}`, 409, "not waiting for approval")
	f.want("ann", "POST", run+"/nodes/gate/approve", `{bad`, 400, "bad JSON body")
	f.want("ann", "POST", run+"/nodes/gate/approve", `{"comment":"checked"}`, 200, "1 of 2")
	f.want("ann", "POST", run+"/nodes/gate/approve", `{"comment":"again"}`, 409, "ann already approved this gate")
	f.want("bob", "POST", run+"/nodes/gate/approve", `{"comment":"confirmed"}`, 200, "node gate approved by bob")
	f.want("ann", "POST", run+"/nodes/tape/retry", ``, 403, "role approver may not retry")
	f.want("otto", "POST", run+"/nodes/tape/mark", `{"reason":" "}`, 400, "a reason is required")
	f.want("otto", "POST", run+"/nodes/tape/retry", ``, 200, "tape reset by otto")
	f.want("otto", "POST", run+"/nodes/tape/retry", ``, 409, "pending already")
	f.want("root", "POST", run+"/nodes/tape/mark", `{"reason":"restored by hand from paper"}`, 200, "marked done by root")
	// Every action is journaled with the operator's name.
	st, err := state.Open(f.path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var by []string
	st.Journal(f.run, 0, func(e state.Entry) error {
		if e.By != "" {
			by = append(by, string(e.Type)+":"+e.By)
		}
		return nil
	})
	if got := strings.Join(by, ","); got != "approval:ann,approved:bob,reset:otto,marked:root" {
		t.Errorf("journaled actions: %s", got)
	}
}

// browser is a cookie-keeping client that does not follow redirects.
func (f *fixture) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) login(who string) *http.Client {
	f.t.Helper()
	c := f.browser()
	resp, err := c.PostForm(f.srv.URL+"/login", url.Values{"token": {f.tokens[who]}})
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		f.t.Fatalf("login as %s: %d", who, resp.StatusCode)
	}
	ck := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "reprise_session="} {
		if !strings.Contains(ck, want) {
			f.t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	return c
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestPagesSecurity: no page without a session (but login and health);
// the CSP allows no inline script; markup in titles, errors and log lines
// is shown as text; a form without the CSRF token is refused; a viewer
// cannot approve; login is rate-limited; tokens never reach the state
// file, the journal or the log in clear.
func TestPagesSecurity(t *testing.T) {
	f := newFixture(t)
	anon := f.browser()
	base := f.srv.URL + "/runs/" + f.run
	for _, p := range []string{f.srv.URL + "/", base, base + "/graph", base + "/timeline", base + "/journal", base + "/report", base + "/nodes/ad"} {
		code, _, h := get(t, anon, p)
		if code != 303 || h.Get("Location") != "/login" {
			t.Errorf("GET %s without a session: %d → %q", p, code, h.Get("Location"))
		}
	}
	if code, _, _ := get(t, anon, base+"/events"); code != 401 {
		t.Errorf("events without a session: %d", code)
	}
	resp, _ := anon.PostForm(base+"/nodes/gate/approve", url.Values{"comment": {"x"}})
	if resp.StatusCode != 401 {
		t.Errorf("approve without a session: %d", resp.StatusCode)
	}
	if code, body, _ := get(t, anon, f.srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	code, _, h := get(t, anon, f.srv.URL+"/login")
	csp := h.Get("Content-Security-Policy")
	if code != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("login: %d, CSP %q", code, csp)
	}

	viewer := f.login("vic")
	for _, p := range []string{base, base + "/nodes/ad", base + "/nodes/tape", base + "/graph", base + "/timeline", base + "/journal"} {
		code, body, _ := get(t, viewer, p)
		if code != 200 {
			t.Errorf("GET %s as viewer: %d", p, code)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "</style>") {
			t.Errorf("GET %s: markup rendered as markup:\n%s", p, body)
		}
		if strings.Contains(body, "<script>") && !strings.Contains(body, `<script src="/static/app.js" defer></script>`) {
			t.Errorf("GET %s: an inline script", p)
		}
	}
	_, nodeAd, _ := get(t, viewer, base+"/nodes/ad")
	if !strings.Contains(nodeAd, "&lt;script&gt;alert(&#39;ad&#39;)&lt;/script&gt;&lt;/style&gt;") {
		t.Errorf("the title is not shown escaped:\n%s", nodeAd)
	}
	_, nodeTape, _ := get(t, viewer, base+"/nodes/tape")
	if !strings.Contains(nodeTape, "&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;") {
		t.Errorf("the log line is not shown escaped:\n%s", nodeTape)
	}
	if strings.Contains(nodeTape, `action="/runs/`+f.run+`/nodes/tape/retry"`) {
		t.Error("a viewer is offered the retry form")
	}
	csrf := csrfRE.FindStringSubmatch(nodeAd)
	if csrf == nil {
		t.Fatal("no CSRF token on the page")
	}
	resp, _ = viewer.PostForm(base+"/nodes/gate/approve", url.Values{"comment": {"x"}, "csrf": {csrf[1]}})
	if resp.StatusCode != 403 {
		t.Errorf("viewer approves: %d, want 403", resp.StatusCode)
	}

	ann := f.login("ann")
	_, gatePage, _ := get(t, ann, base+"/nodes/gate")
	tok := csrfRE.FindStringSubmatch(gatePage)
	resp, _ = ann.PostForm(base+"/nodes/gate/approve", url.Values{"comment": {"x"}})
	if resp.StatusCode != 403 {
		t.Errorf("form without CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ = ann.PostForm(base+"/nodes/gate/approve", url.Values{"comment": {"x"}, "csrf": {csrf[1]}})
	if resp.StatusCode != 403 {
		t.Errorf("form with another session's CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ = ann.PostForm(base+"/nodes/gate/approve", url.Values{"comment": {"samples match"}, "csrf": {tok[1]}})
	if resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "1+of+2") {
		t.Errorf("approve with the token: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Rate limit: 3 attempts, then 429 even with a good token.
	bad := f.browser()
	for i := 0; i < 3; i++ {
		r, _ := bad.PostForm(f.srv.URL+"/login", url.Values{"token": {"rpr_0123456789abcdef_wrong"}})
		if r.StatusCode != 401 {
			t.Errorf("bad login %d: %d", i, r.StatusCode)
		}
	}
	r, _ := bad.PostForm(f.srv.URL+"/login", url.Values{"token": {f.tokens["vic"]}})
	if r.StatusCode != 429 {
		t.Errorf("login after 3 failures: %d, want 429", r.StatusCode)
	}

	for _, p := range []string{f.path, f.path + ".log"} {
		raw, _ := os.ReadFile(p)
		for who, tok := range f.tokens {
			if bytes.Contains(raw, []byte(tok[len("rpr_0123456789abcdef_"):])) {
				t.Errorf("%s holds %s's token", p, who)
			}
		}
	}
}

// TestEventsLive: an open event stream gets the journal entry of an
// approval made meanwhile, with the approver's name.
func TestEventsLive(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/runs/"+f.run+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens["vic"])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); line != ": connected\n" {
		t.Fatalf("first line %q", line)
	}
	f.want("ann", "POST", "/api/v1/runs/"+f.run+"/nodes/gate/approve", `{"comment":"live"}`, 200, "1 of 2")
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"by":"ann"`) && strings.Contains(line, `"type":"approval"`) {
			break
		}
	}
	if code, _ := f.call("vic", "GET", "/api/v1/runs/nope/events", ""); code != 404 {
		t.Errorf("events of an unknown run: %d", code)
	}
}

func TestSelfSignedFingerprint(t *testing.T) {
	cert, fp, err := web.SelfSigned("127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fp != web.Fingerprint(cert.Certificate[0]) || len(fp) != 95 || !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("fingerprint %q", fp)
	}
}
