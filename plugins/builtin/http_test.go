package builtin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

func TestHTTPValidate(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"fine", map[string]any{"url": "https://pacs.local/health", "status": 204, "body": "^ok"}, nil},
		{"placeholder", map[string]any{"url": "${nodes.web.outputs.url}"}, nil},
		{"no url", map[string]any{}, []string{"url"}},
		{"not http", map[string]any{"url": "ftp://x/"}, []string{"with.url: not an http or https URL"}},
		{"bad status and body", map[string]any{"url": "http://x/", "status": 42, "body": "("},
			[]string{"with.status: 42 is not an HTTP status", "with.body: invalid regular expression"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&HTTP{}).Validate(context.Background(), sdk.NewRequest("n", tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %d naming %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to name %q", i, got[i], w)
				}
			}
		})
	}
}

// TestHTTPRestorePolls: Restore probes until the endpoint answers the
// wanted status and body, logging each failed probe.
func TestHTTPRestorePolls(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "status: ok")
	}))
	defer srv.Close()
	rec := sdk.NewRecorder()
	req := sdk.NewRequest("web", map[string]any{"url": srv.URL, "body": "ok$", "interval": "10ms"})
	if err := (&HTTP{}).Restore(context.Background(), req, rec.Stream); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	var logs int
	for _, ev := range rec.Events() {
		if ev.Kind == "log" && strings.Contains(ev.Message, "status 503, want 200") {
			logs++
		}
	}
	if logs != 2 || !strings.HasPrefix(rec.Message(), srv.URL+" healthy after 3 probe(s)") {
		t.Errorf("%d failed-probe logs, message %q; want 2 and healthy after 3 probes", logs, rec.Message())
	}
}

// TestHTTPRestoreDeadline: an endpoint that never gets healthy fails the
// step at the node's deadline, saying what the last probe saw; the URL's
// password never shows.
func TestHTTPRestoreDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "degraded") }))
	defer srv.Close()
	url := strings.Replace(srv.URL, "http://", "http://admin:hunter2@", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // room for the first probe on a loaded machine
	defer cancel()
	err := (&HTTP{}).Restore(ctx, sdk.NewRequest("web", map[string]any{"url": url, "body": "^ok", "interval": "20ms"}), sdk.NewRecorder().Stream)
	if err == nil || !strings.Contains(err.Error(), "not healthy") || !strings.Contains(err.Error(), `body does not match "^ok"`) {
		t.Errorf("err = %v, want not healthy with the last probe", err)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err %q shows the URL's password", err)
	}
}

func TestHTTPCheckAndVerify(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer up.Close()
	ctx := context.Background()
	good := sdk.NewRequest("web", map[string]any{"url": up.URL, "status": 204})
	bad := sdk.NewRequest("web", map[string]any{"url": up.URL})
	if res, err := (&HTTP{}).Check(ctx, good); err != nil || !res.Restored {
		t.Errorf("Check(204 wanted, 204 served) = %+v, %v; want restored", res, err)
	}
	if res, err := (&HTTP{}).Check(ctx, bad); err != nil || res.Restored || !strings.Contains(res.Message, "status 204, want 200") {
		t.Errorf("Check(200 wanted, 204 served) = %+v, %v; want not restored, saying why", res, err)
	}
	if res, err := (&HTTP{}).Verify(ctx, good); err != nil || res.Failed {
		t.Errorf("Verify(healthy) = %+v, %v", res, err)
	}
	if res, err := (&HTTP{}).Verify(ctx, bad); err != nil || !res.Failed {
		t.Errorf("Verify(unhealthy) = %+v, %v; want failed", res, err)
	}
	if _, err := (&HTTP{}).Check(ctx, sdk.NewRequest("web", map[string]any{"url": "ftp://x"})); err == nil {
		t.Error("Check with a bad config: no error")
	}
}

func TestHTTPDryRun(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	req := sdk.NewRequest("web", map[string]any{"url": srv.URL})
	req.DryRun = true
	rec := sdk.NewRecorder()
	if err := (&HTTP{}).Restore(context.Background(), req, rec.Stream); err != nil || calls.Load() != 0 {
		t.Errorf("dry run: err %v, %d probes; want none", err, calls.Load())
	}
	if rec.Message() != "dry run: would wait for "+srv.URL {
		t.Errorf("message = %q", rec.Message())
	}
}
