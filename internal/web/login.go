package web

import (
	"crypto/subtle"
	"net/http"

	"github.com/reprise-si/reprise/engine/state"
)

func subtleEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login.html", pageData{Title: "Log in"})
}

// login exchanges a token for a session cookie. Failed attempts are
// rate-limited per client address.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if !s.allow(addr) {
		s.render(w, http.StatusTooManyRequests, "login.html", pageData{Title: "Log in", Data: map[string]bool{"Limited": true}})
		return
	}
	op, err := s.checker.Check(r.PostFormValue("token"))
	if err != nil {
		s.fail(addr)
		s.render(w, http.StatusUnauthorized, "login.html", pageData{Title: "Log in", Data: map[string]bool{"Error": true}})
		return
	}
	id := randomHex(32)
	s.mu.Lock()
	if len(s.sessions) > 10000 {
		s.sessions = map[string]*session{}
	}
	s.sessions[id] = &session{op: op, csrf: randomHex(32), expires: s.opts.Now().Add(sessionTTL), token: r.PostFormValue("token")}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, Secure: s.opts.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ state.Operator, _ string) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.opts.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
