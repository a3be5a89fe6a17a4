package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/report"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/deadline"
)

// pageData is what every template gets.
type pageData struct {
	Op    state.Operator
	CSRF  string
	Title string
	Msg   string
	Run   *runData
	Now   time.Time
	Data  any
}

func (p pageData) Can(a string) bool { return auth.Role(p.Op.Role).Can(auth.Action(a)) }

var funcs = map[string]any{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"dur":   func(d time.Duration) string { return view.FormatDuration(d.Round(time.Second)) },
	"pct":   func(f float64) string { return fmt.Sprintf("%.0f%%", f) },
	"since": since,
	"risky": func(d deadline.Deadline) bool {
		return d.Status == deadline.Late || d.Status == deadline.AtRisk || d.Status == deadline.Missed
	},
	"cnt":   func(m map[state.NodeState]int, k string) int { return m[state.NodeState(k)] },
	"dcnt":  func(m map[deadline.Status]int, k string) int { return m[deadline.Status(k)] },
	"words": func(s string) string { return strings.ReplaceAll(s, "-", " ") },
	"first": func(s string) string {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			return s[:i] + " …"
		}
		return s
	},
}

func (s *Server) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) errorPage(w http.ResponseWriter, err error, op state.Operator, csrf string) {
	s.render(w, statusOf(err), "error.html", pageData{Op: op, CSRF: csrf, Title: "Error", Msg: err.Error()})
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	runs, live, err := s.runs()
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	if len(runs) == 1 || (live != "" && r.URL.Query().Get("all") == "") {
		id := runs[0].ID
		if live != "" {
			id = live
		}
		http.Redirect(w, r, "/runs/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "runs.html", pageData{Op: op, CSRF: csrf, Title: "Runs", Now: s.opts.Now(),
		Data: map[string]any{"Runs": runs, "Live": live}})
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	d, err := s.load(r.PathValue("run"), false)
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	p := pageData{Op: op, CSRF: csrf, Title: "Run " + d.M.Run.ID, Run: d, Now: d.M.Now, Msg: r.URL.Query().Get("msg")}
	name := "run.html"
	if r.URL.Query().Get("fragment") == "1" {
		name = "run-body"
	}
	s.render(w, http.StatusOK, name, p)
}

func (s *Server) graphPage(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	d, err := s.load(r.PathValue("run"), false)
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	q := r.URL.Query()
	// Above DrawAtMost nodes the page draws one cell per zone and kind
	// (?draw=1 draws every node all the same).
	l := s.graphs.layoutOf(d.M)
	data := map[string]any{"Aggregate": len(d.M.Nodes) > s.opts.DrawAtMost && q.Get("draw") == "", "Max": s.opts.DrawAtMost,
		"States": state.NodeStates, "Zoned": len(d.M.Zones) > 0, "Q": q.Get("q")}
	if data["Aggregate"] == true {
		data["SVG"] = svgAggregate(d.M, newAggregate(d.M, l))
	} else {
		data["SVG"] = svgGraph(d.M, l)
	}
	if zone, kind := q.Get("zone"), q.Get("kind"); q.Has("kind") {
		data["Cell"] = fmt.Sprintf("zone %q, kind %q", zone, kind)
		data["Matches"] = matchNodes(d.M, l, func(n *view.Node, i int) bool {
			return l.Boxes[i].Zone == zone && kindName(n) == kind
		})
	} else if text := strings.ToLower(strings.TrimSpace(q.Get("q"))); text != "" {
		data["Matches"] = matchNodes(d.M, l, func(n *view.Node, _ int) bool {
			return strings.Contains(strings.ToLower(n.ID+" "+n.Title), text)
		})
	}
	name := "graph.html"
	if q.Get("fragment") == "1" {
		name = "graph-body"
	}
	s.render(w, http.StatusOK, name, pageData{Op: op, CSRF: csrf, Title: "Graph of " + d.M.Run.ID, Run: d, Now: d.M.Now, Data: data})
}

// matchList is the nodes a search or a cell of the aggregated graph
// lists, those needing eyes first.
type matchList struct {
	Nodes []*view.Node
	More  int
}

// maxMatches bounds a match list.
const maxMatches = 200

func matchNodes(m *view.Model, l *layout, keep func(*view.Node, int) bool) matchList {
	var out matchList
	for _, st := range paintOrder {
		for i := range m.Nodes {
			n := &m.Nodes[i]
			if n.State != st || !keep(n, i) {
				continue
			}
			if len(out.Nodes) == maxMatches {
				out.More++
				continue
			}
			out.Nodes = append(out.Nodes, n)
		}
	}
	return out
}

func (s *Server) nodePage(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	d, err := s.load(r.PathValue("run"), false)
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	n := d.M.Node(r.PathValue("node"))
	if n == nil {
		s.errorPage(w, fmt.Errorf("run %s has no node %q: %w", d.M.Run.ID, r.PathValue("node"), state.ErrNodeNotFound), op, csrf)
		return
	}
	info := nodeInfo(d, n)
	s.render(w, http.StatusOK, "node.html", pageData{Op: op, CSRF: csrf, Title: n.ID, Run: d, Now: d.M.Now,
		Msg: r.URL.Query().Get("msg"), Data: map[string]any{"N": info, "Log": s.logTail(n.ID, 40)}})
}

func (s *Server) journalPage(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	d, err := s.load(r.PathValue("run"), true)
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	entries := d.M.Journal
	const shown = 500
	cut := 0
	if len(entries) > shown && r.URL.Query().Get("all") == "" {
		cut = len(entries) - shown
		entries = entries[cut:]
	}
	rev := make([]state.Entry, len(entries))
	for i, e := range entries {
		rev[len(entries)-1-i] = e
	}
	s.render(w, http.StatusOK, "journal.html", pageData{Op: op, CSRF: csrf, Title: "Journal of " + d.M.Run.ID, Run: d, Now: d.M.Now,
		Data: map[string]any{"Entries": rev, "Cut": cut}})
}

func (s *Server) reportDownload(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	d, err := s.load(r.PathValue("run"), true)
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	rep := report.FromModel(d.M, report.Options{Now: d.M.Now, Location: time.Local})
	var buf bytes.Buffer
	if err := rep.HTML(&buf); err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	// The report is a document of its own (inline CSS, no script): it
	// gets its own policy.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="reprise-report-%s.html"`, d.M.Run.ID))
	_, _ = w.Write(buf.Bytes())
}

// formAction handles a page's approve, retry, mark or certify form, then
// goes back to the node's page (the run's, for a zone) with the outcome.
func (s *Server) formAction(act action) handler {
	return func(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
		text := r.PostFormValue("comment")
		if act == actMark {
			text = r.PostFormValue("reason")
		}
		msg, err := s.do(r.Context(), act, r.PathValue("run"), actionTarget(act, r), op, text)
		if err != nil {
			s.errorPage(w, err, op, csrf)
			return
		}
		back := "/runs/" + url.PathEscape(r.PathValue("run"))
		if act != actCertify {
			back += "/nodes/" + url.PathEscape(r.PathValue("node"))
		}
		http.Redirect(w, r, back+"?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	}
}

// resumeForm handles the run page's resume form (--wait unless the form
// says wait=no), then goes back to the run's page with the outcome.
func (s *Server) resumeForm(w http.ResponseWriter, r *http.Request, op state.Operator, csrf string) {
	res, err := s.resume(r.Context(), r.PathValue("run"), op, r.PostFormValue("wait") != "no")
	if err != nil {
		s.errorPage(w, err, op, csrf)
		return
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(r.PathValue("run"))+"?msg="+url.QueryEscape(res.Result), http.StatusSeeOther)
}

// logTail returns the last n messages of node id in the JSON log beside
// the state file (STATE.log), read from its last 512 KiB.
func (s *Server) logTail(id string, n int) []string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 512<<10 {
		_, _ = f.Seek(fi.Size()-512<<10, io.SeekStart)
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["node"] != id {
			continue
		}
		msg, _ := line["msg"].(string)
		if l, ok := line["line"].(string); ok {
			msg += ": " + l
		}
		ts, _ := line["time"].(string)
		out = append(out, strings.TrimSpace(ts+" "+msg))
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
