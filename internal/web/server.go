// Package web is the crisis room: `reprise serve`'s dashboard of the runs
// in a state file and its JSON API (docs/API.md), also while a run goes
// on (through the control socket of the process that holds the file).
//
// Every page and API route needs an operator (internal/auth): the pages a
// session cookie (HttpOnly, SameSite=Strict, Secure under TLS) got by
// logging in with a token, with a CSRF token on every form; the API a
// Bearer token. Only /login and /healthz answer without. Every action is
// journaled with the operator's name. Assets are embedded: nothing is
// fetched from anywhere, and the Content-Security-Policy allows no inline
// script.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/auth"
)

//go:embed assets
var assets embed.FS

// Options configure a Server.
type Options struct {
	// StatePath is the state file served (with Backend: where it is, for
	// messages).
	StatePath string
	// Backend, when set, is the state served instead of the file: etcd,
	// read and written directly (no file lock, no control socket). The
	// server does not close it.
	Backend state.Backend
	// Live, with Backend, returns the run a process is running now ("").
	Live func() string
	// LogPath is the JSON log of the runs (default StatePath + ".log").
	LogPath string
	// TLS says the server is reached over HTTPS (cookies are Secure).
	TLS bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LoginRate bounds login attempts per client address: Burst at once,
	// then one per Every (defaults: 5, 12s).
	LoginBurst int
	LoginEvery time.Duration
	// Poll is how often live pages' event streams look for new journal
	// entries (default 400ms).
	Poll time.Duration
	// Warm reads the most recent run's graph (the live one first) in the
	// background as the server starts, so that the first page a browser
	// asks for does not wait for a large graph to be parsed.
	Warm bool
	// Anchor is where the actions taken here also record the new journal
	// head (serve --anchor: a file or a webhook; "": the JSON log only),
	// and what a run's journal is checked against before they write.
	Anchor string
	// Reprise is the reprise binary that a resume started here runs, as a
	// process of its own (resume.go; serve: its own executable). Empty:
	// the dashboard does not resume runs (501).
	Reprise string
	// ResumeArgs are added to the command line of every resume started
	// here: how to reach the state as this server does (serve: the etcd
	// TLS files it was given, --etcd-cacert/--etcd-cert/--etcd-key). File
	// paths only, never a secret: a command line is visible to every user
	// of the machine.
	ResumeArgs []string
	// Logf receives what the server says of the resumes it started: their
	// pid and how they ended (nil: nothing).
	Logf func(format string, args ...any)
	// DrawAtMost is the largest run whose graph page draws every node
	// (default 2000); a larger one is drawn as one cell per zone and kind.
	DrawAtMost int
}

// Server is the dashboard's HTTP handler.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	checker *auth.Checker
	tmpl    *template.Template

	mu       sync.Mutex
	sessions map[string]*session
	limiter  map[string]*bucket

	hubs    *hubs
	graphs  *graphCache
	models  *modelCache
	warmed  chan struct{} // closed when the warm-up is over
	resumes resumes       // the resumes started here (resume.go)

	opsMu sync.Mutex // serialises reads of the operators: one at a time
	ops   []state.Operator
	opsAt time.Time
}

type session struct {
	op      state.Operator
	csrf    string
	expires time.Time
	// token is the operator's token, given at login and kept in this
	// process's memory only (never written): a resume started from the
	// dashboard runs as a process of its own, which an etcd state with
	// operators authorizes by that token (resume.go).
	token string
}

// tokenKey is the request context's key of the operator's token.
type tokenKey struct{}

// withToken returns r with the operator's token in its context.
func withToken(r *http.Request, token string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), tokenKey{}, token))
}

// tokenOf returns the operator's token a handler's request came with.
func tokenOf(ctx context.Context) string {
	t, _ := ctx.Value(tokenKey{}).(string)
	return t
}

// sessionTTL is how long a session lasts without use.
const sessionTTL = 12 * time.Hour

// cookieName is the session cookie.
const cookieName = "reprise_session"

// New builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LoginBurst <= 0 {
		opts.LoginBurst = 5
	}
	if opts.LoginEvery <= 0 {
		opts.LoginEvery = 12 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 400 * time.Millisecond
	}
	if opts.DrawAtMost <= 0 {
		opts.DrawAtMost = 2000
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), tmpl: t, sessions: map[string]*session{}, limiter: map[string]*bucket{}}
	s.checker = &auth.Checker{Operators: s.operators}
	s.graphs = newGraphCache()
	s.models = newModelCache()
	s.hubs = newHubs(s)
	s.routes()
	s.warmed = make(chan struct{})
	if opts.Warm {
		go s.warm()
	} else {
		close(s.warmed)
	}
	return s, nil
}

// warm loads the live run, else the most recent one: its graph and its
// layout land in the caches.
func (s *Server) warm() {
	defer close(s.warmed)
	runs, live, err := s.runs()
	if err != nil || len(runs) == 0 {
		return
	}
	id := runs[0].ID
	if live != "" {
		id = live
	}
	if d, err := s.loadFresh(id, false); err == nil {
		s.graphs.layoutOf(d.M)
	}
}

// Close stops the live event streams.
func (s *Server) Close() { s.hubs.close() }

// operatorsTTL is how long the operators read from the state file are
// reused: a revoked token stops working within this time. It spares the
// process running the run a socket call per page and per event stream
// (50 wall screens reconnecting at once).
const operatorsTTL = time.Second

// operators reads the operators of the state file (or through its socket),
// at most once per operatorsTTL.
func (s *Server) operators() ([]state.Operator, error) {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	if now := time.Now(); now.Sub(s.opsAt) < operatorsTTL && s.ops != nil {
		return s.ops, nil
	}
	r, err := s.openState()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ops, err := r.Operators()
	if err != nil {
		return nil, err
	}
	s.ops, s.opsAt = ops, time.Now()
	return ops, nil
}

// ServeHTTP sets the security headers, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if s.opts.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	static, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.page(auth.ActView, s.logout))
	s.mux.HandleFunc("GET /{$}", s.page(auth.ActView, s.runsPage))
	s.mux.HandleFunc("GET /runs/{run}", s.page(auth.ActView, s.runPage))
	s.mux.HandleFunc("GET /runs/{run}/graph", s.page(auth.ActView, s.graphPage))
	s.mux.HandleFunc("GET /runs/{run}/timeline", s.page(auth.ActView, s.timelinePage))
	s.mux.HandleFunc("GET /runs/{run}/journal", s.page(auth.ActView, s.journalPage))
	s.mux.HandleFunc("GET /runs/{run}/report", s.page(auth.ActView, s.reportDownload))
	s.mux.HandleFunc("GET /runs/{run}/events", s.page(auth.ActView, s.events))
	s.mux.HandleFunc("GET /runs/{run}/nodes/{node}", s.page(auth.ActView, s.nodePage))
	s.mux.HandleFunc("POST /runs/{run}/nodes/{node}/approve", s.page(auth.ActApprove, s.formAction(actApprove)))
	s.mux.HandleFunc("POST /runs/{run}/nodes/{node}/retry", s.page(auth.ActRetry, s.formAction(actRetry)))
	s.mux.HandleFunc("POST /runs/{run}/nodes/{node}/mark", s.page(auth.ActMark, s.formAction(actMark)))
	s.mux.HandleFunc("POST /runs/{run}/zones/{zone}/certify", s.page(auth.ActCertify, s.formAction(actCertify)))
	s.mux.HandleFunc("POST /runs/{run}/resume", s.page(auth.ActResume, s.resumeForm))

	s.mux.HandleFunc("GET /api/v1/runs", s.api(auth.ActView, s.apiRuns))
	s.mux.HandleFunc("GET /api/v1/runs/{run}", s.api(auth.ActView, s.apiRun))
	s.mux.HandleFunc("GET /api/v1/runs/{run}/nodes/{node}", s.api(auth.ActView, s.apiNode))
	s.mux.HandleFunc("GET /api/v1/runs/{run}/events", s.api(auth.ActView, s.events))
	s.mux.HandleFunc("POST /api/v1/runs/{run}/nodes/{node}/approve", s.api(auth.ActApprove, s.apiAction(actApprove)))
	s.mux.HandleFunc("POST /api/v1/runs/{run}/nodes/{node}/retry", s.api(auth.ActRetry, s.apiAction(actRetry)))
	s.mux.HandleFunc("POST /api/v1/runs/{run}/nodes/{node}/mark", s.api(auth.ActMark, s.apiAction(actMark)))
	s.mux.HandleFunc("POST /api/v1/runs/{run}/zones/{zone}/certify", s.api(auth.ActCertify, s.apiAction(actCertify)))
	s.mux.HandleFunc("POST /api/v1/runs/{run}/resume", s.api(auth.ActResume, s.apiResume))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.bearer(w, r, auth.ActView); ok {
			apiError(w, http.StatusNotFound, "no such API route: "+r.Method+" "+r.URL.Path)
		}
	})
}

// handler is a page or API handler given the authenticated operator.
type handler func(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string)

// page wraps a page: a session is required (else to the login page), its
// role must allow act (else 403), and a POST must carry the session's
// CSRF token.
func (s *Server) page(act auth.Action, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r)
		if sess == nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/events") {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), sess.csrf) {
			http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		if !auth.Role(sess.op.Role).Can(act) {
			http.Error(w, "your role ("+sess.op.Role+") may not "+string(act), http.StatusForbidden)
			return
		}
		h(w, withToken(r, sess.token), sess.op, sess.csrf)
	}
}

// api wraps an API route: a Bearer token is required (401), its role must
// allow act (403).
func (s *Server) api(act auth.Action, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, ok := s.bearer(w, r, act)
		if ok {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			h(w, withToken(r, tok), op, "")
		}
	}
}

func (s *Server) bearer(w http.ResponseWriter, r *http.Request, act auth.Action) (state.Operator, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="reprise"`)
		apiError(w, http.StatusUnauthorized, "missing Authorization: Bearer TOKEN")
		return state.Operator{}, false
	}
	if !s.allow(clientAddr(r)) {
		apiError(w, http.StatusTooManyRequests, "too many failed attempts: wait and try again")
		return state.Operator{}, false
	}
	op, err := s.checker.Check(tok)
	if err != nil {
		s.fail(clientAddr(r))
		w.Header().Set("WWW-Authenticate", `Bearer realm="reprise", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "unknown or revoked token")
		return state.Operator{}, false
	}
	if !auth.Role(op.Role).Can(act) {
		apiError(w, http.StatusForbidden, "role "+op.Role+" may not "+string(act))
		return state.Operator{}, false
	}
	return op, true
}

// session returns the live session of r's cookie, or nil.
func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	sess := s.sessions[c.Value]
	now := s.opts.Now()
	if sess != nil && now.After(sess.expires) {
		delete(s.sessions, c.Value)
		sess = nil
	}
	if sess != nil {
		sess.expires = now.Add(sessionTTL)
	}
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	// A revoked operator's session ends within operatorsTTL.
	if ops, err := s.operators(); err == nil {
		for _, op := range ops {
			if op.Name == sess.op.Name && op.TokenID == sess.op.TokenID {
				return sess
			}
		}
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sameToken(a, b string) bool {
	return len(a) == len(b) && a != "" && subtleEq(a, b)
}

// bucket is a token bucket of failed login attempts per client address.
type bucket struct {
	tokens float64
	last   time.Time
}

// allow reports whether addr may try a token now.
func (s *Server) allow(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.refill(addr)
	return b.tokens >= 1
}

// fail spends one attempt of addr.
func (s *Server) fail(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.refill(addr)
	b.tokens--
}

func (s *Server) refill(addr string) *bucket {
	now := s.opts.Now()
	b := s.limiter[addr]
	if b == nil {
		if len(s.limiter) > 10000 {
			s.limiter = map[string]*bucket{}
		}
		b = &bucket{tokens: float64(s.opts.LoginBurst), last: now}
		s.limiter[addr] = b
	}
	b.tokens += now.Sub(b.last).Seconds() / s.opts.LoginEvery.Seconds()
	if max := float64(s.opts.LoginBurst); b.tokens > max {
		b.tokens = max
	}
	b.last = now
	return b
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var errNotApplicable = errors.New("does not apply")
