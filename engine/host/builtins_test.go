package host_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/step"
)

func TestManualBuiltin(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 30*time.Second)
	res, err := h.Restore(ctx, req("manual", "gate", map[string]any{"message": "biomedical team confirms the scanners"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != step.Waiting || res.Message != "waiting for approval: biomedical team confirms the scanners" {
		t.Errorf("Restore = %+v, want waiting with the message", res)
	}
	c, err := h.Check(ctx, req("manual", "gate", nil))
	if err != nil || c.Restored {
		t.Errorf("Check = %+v, %v; want not restored", c, err)
	}
	problems, err := h.Validate(ctx, req("manual", "gate", map[string]any{"mesage": "x"}))
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "with.mesage: unknown field (want message)") {
		t.Errorf("Validate = %q, %v", problems, err)
	}
}

func TestHTTPBuiltin(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow-start": // healthy from the third probe
			if hits.Add(1) < 3 {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"status":"UP"}`)
		case "/down":
			http.Error(w, "down", http.StatusBadGateway)
		default:
			fmt.Fprint(w, `{"status":"UP"}`)
		}
	}))
	t.Cleanup(srv.Close)
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	with := func(path string, extra ...any) map[string]any {
		m := map[string]any{"url": srv.URL + path, "interval": "50ms"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name       string
		with       map[string]any
		deadline   time.Duration
		wantStatus step.Status
		wantMsg    string
	}{
		{"healthy after retries", with("/slow-start", "body", `"status":"UP"`), 10 * time.Second, step.Succeeded, "healthy after 3 probe(s)"},
		{"body mismatch until deadline", with("/", "body", `DOWN`), 500 * time.Millisecond, step.Failed, "context deadline exceeded"},
		{"expected status", with("/down", "status", 502), 5 * time.Second, step.Succeeded, "healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cctx, cancel := context.WithTimeout(ctx, tt.deadline)
			defer cancel()
			res, err := h.Restore(cctx, req("http", "web", tt.with), nil)
			if tt.wantStatus == step.Failed && err != nil { // the deadline passed: a call error
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("err = %v, want %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil || res.Status != tt.wantStatus || !strings.Contains(res.Message, tt.wantMsg) {
				t.Errorf("Restore = %+v, %v; want %s with %q", res, err, tt.wantStatus, tt.wantMsg)
			}
		})
	}
	v, err := h.Verify(ctx, req("http", "web", with("/down")))
	if err != nil || v.Status != step.Failed || !strings.Contains(v.Message, "status 502, want 200") {
		t.Errorf("Verify = %+v, %v", v, err)
	}
	c, err := h.Check(ctx, req("http", "web", with("/")))
	if err != nil || !c.Restored {
		t.Errorf("Check = %+v, %v", c, err)
	}
	problems, err := h.Validate(ctx, req("http", "web", map[string]any{"url": "ftp://user:s3cret@x", "status": 999, "body": "("}))
	if err != nil || len(problems) != 3 || strings.Contains(strings.Join(problems, " "), "s3cret") {
		t.Errorf("Validate = %q, %v; want 3 problems, no password", problems, err)
	}
	problems, err = h.Validate(ctx, req("http", "web", map[string]any{"url": "${nodes.eai-start.outputs.url}/health"}))
	if err != nil || len(problems) != 0 {
		t.Errorf("Validate with a placeholder = %q, %v; want no problem (resolved at run time)", problems, err)
	}
	srvURL := strings.Replace(srv.URL, "http://", "http://probe:s3cret@", 1)
	res, err := h.Restore(ctx, req("http", "web", map[string]any{"url": srvURL + "/"}), nil)
	if err != nil || res.Status != step.Succeeded || strings.Contains(res.Message, "s3cret") || !strings.Contains(res.Message, "probe:xxxxx@") {
		t.Errorf("Restore with credentials = %+v, %v; want the password redacted", res, err)
	}
}

func TestPluginLogsReachZap(t *testing.T) {
	opts := hostOpts(t)
	logger, logs := observed()
	opts.Logger = logger
	h := newHost(t, opts)
	ctx := ctxT(t, 30*time.Second)
	if _, err := h.Restore(ctx, req("crashy", "lab", map[string]any{"do": "stderr"}), nil); err != nil {
		t.Fatal(err)
	}
	withNode := 0
	for _, want := range []string{"real stderr line", "forwarded stderr line"} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			var found bool
			for _, e := range logs.All() {
				ctxm := e.ContextMap()
				if strings.Contains(e.Message, want) && ctxm["plugin"] == "crashy" {
					found = true
					// node= is set while the call is in flight; a line
					// forwarded after the call ended has none.
					if n, ok := ctxm["node"]; ok && n != "lab" {
						t.Errorf("%q logged with node=%v, want lab", want, n)
					} else if ok {
						withNode++
					}
				}
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("no zap entry %q with plugin=crashy", want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if withNode == 0 {
		t.Error("no plugin line logged with node=lab")
	}
}
