package web

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/crisis"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// runSummary is GET /api/v1/runs/{run}: the schema of `status --json`.
type runSummary struct {
	view.Summary
	crisis.View
	// On an etcd state, the agents of the run's zones, as status --json.
	Agents      *cluster.AgentView `json:"agents,omitempty"`
	AgentsError string             `json:"agents_error,omitempty"`
}

func (s *Server) apiRuns(w http.ResponseWriter, _ *http.Request, _ state.Operator, _ string) {
	runs, live, err := s.runs()
	if err != nil {
		apiError(w, statusOf(err), err.Error())
		return
	}
	type item struct {
		state.Run
		Live bool `json:"live"`
	}
	out := make([]item, 0, len(runs))
	for _, r := range runs {
		out = append(out, item{r, r.ID == live})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request, _ state.Operator, _ string) {
	d, err := s.load(r.PathValue("run"), false)
	if err != nil {
		apiError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, runSummary{Summary: d.M.Summary(), View: d.Crisis, Agents: d.Agents, AgentsError: d.AgentsErr})
}

// nodeOut is GET /api/v1/runs/{run}/nodes/{node}.
type nodeOut struct {
	view.Node
	Outputs  map[string]string `json:"outputs,omitempty"`
	Owner    string            `json:"owner,omitempty"`
	Contact  string            `json:"contact,omitempty"`
	Runbook  string            `json:"runbook,omitempty"`
	Deadline any               `json:"deadline,omitempty"`
	Gate     *crisis.Gate      `json:"gate,omitempty"`
}

func (s *Server) apiNode(w http.ResponseWriter, r *http.Request, _ state.Operator, _ string) {
	d, err := s.load(r.PathValue("run"), false)
	if err != nil {
		apiError(w, statusOf(err), err.Error())
		return
	}
	n := d.M.Node(r.PathValue("node"))
	if n == nil {
		apiError(w, http.StatusNotFound, "run "+d.M.Run.ID+" has no node "+r.PathValue("node"))
		return
	}
	writeJSON(w, http.StatusOK, nodeInfo(d, n))
}

func nodeInfo(d *runData, n *view.Node) nodeOut {
	out := nodeOut{Node: *n, Outputs: n.Outputs}
	if c, ok := d.Crisis.Contacts[n.ID]; ok {
		out.Owner, out.Contact, out.Runbook = c.Owner, c.Contact, c.Runbook
	}
	if dl, ok := d.Crisis.Deadline(n.ID); ok {
		out.Deadline = dl
	}
	for i := range d.Crisis.Gates {
		if d.Crisis.Gates[i].Node == n.ID {
			out.Gate = &d.Crisis.Gates[i]
		}
	}
	return out
}

// apiAction is POST …/nodes/{node}/approve {comment}, …/retry,
// …/mark {reason}, and …/zones/{zone}/certify {comment}.
func (s *Server) apiAction(act action) handler {
	return func(w http.ResponseWriter, r *http.Request, op state.Operator, _ string) {
		var body struct {
			Comment string `json:"comment"`
			Reason  string `json:"reason"`
		}
		if !readBody(w, r, &body) {
			return
		}
		text := body.Comment
		if act == actMark {
			text = body.Reason
		}
		msg, err := s.do(r.Context(), act, r.PathValue("run"), actionTarget(act, r), op, text)
		if err != nil {
			apiError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": msg, "by": op.Name})
	}
}

// actionTarget is the node an action is on, or the zone to certify.
func actionTarget(act action, r *http.Request) string {
	if act == actCertify {
		return r.PathValue("zone")
	}
	return r.PathValue("node")
}

// apiResume is POST /api/v1/runs/{run}/resume {wait}: 202 while the run
// goes on in the resume process started for it, 200 when that process has
// already ended (the answer says how the run stands).
func (s *Server) apiResume(w http.ResponseWriter, r *http.Request, op state.Operator, _ string) {
	body := struct {
		Wait *bool `json:"wait"`
	}{}
	if !readBody(w, r, &body) {
		return
	}
	wait := body.Wait == nil || *body.Wait
	res, err := s.resume(r.Context(), r.PathValue("run"), op, wait)
	if err != nil {
		apiError(w, statusOf(err), err.Error())
		return
	}
	code := http.StatusAccepted
	if res.Exit != nil {
		code = http.StatusOK
	}
	writeJSON(w, code, res)
}

// readBody decodes an optional JSON body (at most 64 KiB) into v; on a
// bad one it answers 400 and returns false.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil && len(raw) > 0 {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}
