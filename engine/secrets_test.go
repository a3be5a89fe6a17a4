package engine_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// pemKey is a PEM-shaped secret: redacted whole and line by line.
const pemKey = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ
-----END PRIVATE KEY-----
`

// TestSecretsNeverPersisted: ${secret:NAME} and ${secret:file:PATH} reach
// the plugin and nothing else (state file, journal, log, events), a PEM
// line by line too; ${env:NAME} is plain configuration, never redacted,
// and reaches dependents through outputs; a step that puts a secret into
// an output fails, naming node and output.
func TestSecretsNeverPersisted(t *testing.T) {
	const secret = "hunter2-Sup3rSecret-token"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte(pemKey), 0o600); err != nil {
		t.Fatal(err)
	}
	g := enginetest.MustGraph(t, dir, `version: 1
name: secrets
defaults: {retries: 1, retry_delay: 1ms}
nodes:
  - id: ad
    kind: infrastructure
    plugin: noop
    with: {password: "${secret:AD_ADMIN_PASSWORD}", key: "${secret:file:key.pem}", user: admin}
  - id: web
    kind: application
    plugin: noop
    with: {port: "${env:WEB_PORT}"}
  - id: app
    kind: application
    plugin: noop
    depends_on: [ad, web]
    with: {url: "${nodes.web.outputs.url}", token: "${nodes.ad.outputs.token}"}
  - id: leak
    kind: application
    plugin: noop
    with: {password: "${secret:AD_ADMIN_PASSWORD}"}
`)
	st := enginetest.MustStore(t, dir)
	var sawSecret, sawKey atomic.Bool
	var appURL atomic.Value
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, emit func(step.Event)) (step.Result, error) {
		switch req.NodeID {
		case "web":
			port, _ := req.Config["port"].(string)
			emit(step.Event{Kind: step.EventOutput, Key: "url", Value: "http://127.0.0.1:" + port + "/"})
			return step.Result{Status: step.Succeeded, Message: "listening on " + port}, nil
		case "app":
			appURL.Store(req.Config["url"])
			return step.Result{Status: step.Succeeded}, nil
		case "leak":
			emit(step.Event{Kind: step.EventOutput, Key: "copy", Value: req.Config["password"].(string)})
			return step.Result{Status: step.Succeeded}, nil
		case "ad":
		default:
			return step.Result{Status: step.Succeeded}, nil
		}
		pw, _ := req.Config["password"].(string)
		key, _ := req.Config["key"].(string)
		sawSecret.Store(pw == secret)
		sawKey.Store(key == strings.TrimSuffix(pemKey, "\n"))
		keyLine := strings.Split(key, "\n")[2]
		emit(step.Event{Kind: step.EventLog, Level: "info", Message: "logging in with " + pw + ", key line " + keyLine})
		emit(step.Event{Kind: step.EventOutput, Key: "token", Value: "tok-public"})
		if req.Attempt == 1 {
			return step.Result{Status: step.Failed, Message: "bad password " + pw + "; key starts " + keyLine}, nil
		}
		return step.Result{Status: step.Succeeded, Message: "ok " + pw}, nil
	}}
	logPath := filepath.Join(dir, "reprise.db.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logFile, zap.DebugLevel))
	var events bytes.Buffer
	env := map[string]string{"AD_ADMIN_PASSWORD": secret, "WEB_PORT": "18080"}
	e := engine.New(st, h, engine.Options{
		Logger:    logger,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		OnEvent:   func(ev engine.Event) { events.WriteString(ev.Message + "\n") },
	})
	res, err := e.Start(context.Background(), g)
	if err != nil || res.Status != state.RunFailed || len(res.Failed) != 1 || res.Failed[0].ID != "leak" {
		t.Fatalf("run: %+v %v (want only leak failed)", res, err)
	}
	if want := `node "leak": output "copy" holds a secret`; !strings.Contains(res.Failed[0].Error, want) {
		t.Errorf("leak's error %q lacks %q", res.Failed[0].Error, want)
	}
	if !sawSecret.Load() || !sawKey.Load() {
		t.Fatal("the plugin did not receive the resolved secrets")
	}
	if got := appURL.Load(); got != "http://127.0.0.1:18080/" {
		t.Errorf("app got url %v: ${env:…} values are configuration, never redacted", got)
	}
	if rec, _ := st.Node(res.RunID, "web"); rec.Outputs["url"] != "http://127.0.0.1:18080/" {
		t.Errorf("web's stored outputs %v", rec.Outputs)
	}
	if rec, _ := st.Node(res.RunID, "leak"); len(rec.Outputs) != 0 {
		t.Errorf("leak's outputs were stored: %v", rec.Outputs)
	}
	logger.Sync()
	st.Close()
	keyLines := strings.Split(strings.TrimSpace(pemKey), "\n")
	for _, f := range []string{filepath.Join(dir, "reprise.db"), logPath} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append([]string{secret}, keyLines[1:len(keyLines)-1]...) {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds the secret or a line of the key: %q", filepath.Base(f), s)
			}
		}
		if !bytes.Contains(data, []byte(engine.Redacted)) {
			t.Errorf("%s holds no %s marker: the test did not exercise redaction", filepath.Base(f), engine.Redacted)
		}
	}
	if strings.Contains(events.String(), secret) || strings.Contains(events.String(), keyLines[2]) {
		t.Errorf("events carry a secret:\n%s", events.String())
	}
}

func TestRedactorLines(t *testing.T) {
	r := engine.NewRedactor()
	r.Add(pemKey)
	lines := strings.Split(strings.TrimSpace(pemKey), "\n")
	for _, tc := range []struct{ name, in, want string }{
		{"whole", "key: " + pemKey, "key: " + engine.Redacted},
		{"one line", "bad line " + lines[1] + " at 2", "bad line " + engine.Redacted + " at 2"},
		{"short text kept", "ok -- }", "ok -- }"},
	} {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("%s: got %q want %q", tc.name, got, tc.want)
		}
	}
}
