package host_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/hosttest"
	"github.com/reprise-si/reprise/plugins/sdk"
)

// hostilePlugin writes whatever its node asks to the process's real stdout
// (after the handshake) and stderr, then succeeds: with.stderr and
// with.stdout are base64 bytes; with.stderr_size and with.stdout_size write
// one line of that many bytes.
type hostilePlugin struct{}

var _ sdk.Plugin = hostilePlugin{}

func (hostilePlugin) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "hostile", Version: "0.0.1"}, nil
}

func (hostilePlugin) Restore(_ context.Context, req *sdk.Request, s *sdk.Stream) error {
	stdout, stderr := realStdout, realStderr
	for _, w := range []struct {
		key string
		f   *os.File
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if b64, _ := req.Config[w.key].(string); b64 != "" {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return err
			}
			if _, err := w.f.Write(b); err != nil {
				return err
			}
		}
		if n, _ := req.Config[w.key+"_size"].(float64); n > 0 {
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for left := int(n); left > 0; left -= len(chunk) {
				if _, err := w.f.Write(chunk[:min(left, len(chunk))]); err != nil {
					return err
				}
			}
			if _, err := w.f.Write([]byte("\n")); err != nil {
				return err
			}
		}
	}
	s.Output("pid", fmt.Sprint(os.Getpid()))
	return nil
}

// The real file descriptors (go-plugin swaps os.Stdout and os.Stderr), made
// once: an *os.File closes its descriptor when collected.
var realStdout, realStderr = os.NewFile(1, "stdout"), os.NewFile(2, "stderr")

// hostileOpts declares the hostile plugin.
func hostileOpts(t testing.TB) host.Options {
	t.Helper()
	opts := hostOpts(t)
	writeScript(t, filepath.Join(opts.GraphDir, "hostile"), fmt.Sprintf("#!/bin/sh\n%s=hostile exec %q -test.run='^$'\n", envTestPlugin, os.Args[0]))
	opts.Plugins["hostile"] = graphs.PluginRef{Path: "hostile"}
	return opts
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestHostileStderrAndStdout: no plugin output can crash or block the host.
// An hclog-looking line with a number as its message used to panic inside
// go-plugin; a stdout line over 64 KiB used to block the plugin for good.
func TestHostileStderrAndStdout(t *testing.T) {
	log, logs := observed()
	opts := hostileOpts(t)
	opts.Logger = log
	h := newHost(t, opts)
	tests := []struct {
		name string
		with map[string]any
		want string // a logged message
	}{
		{"message is a number", map[string]any{"stderr": b64(`{"@level":"info","@message":42}` + "\n")}, "42"},
		{"odd hclog fields", map[string]any{"stderr": b64(`{"@level":7,"@message":{"a":[1]},"@timestamp":"soon","x":null}` + "\n" + `{"@message":null}` + "\n")}, `{"a":[1]}`},
		{"invalid UTF-8", map[string]any{"stderr": b64("Fran\xe7ois\n"), "stdout": b64("caf\xe9\x00\xff\n")}, "Fran\uFFFDois"},
		{"long stdout line", map[string]any{"stdout_size": float64(1 << 20)}, "[cut: "},
		{"long stderr line", map[string]any{"stderr_size": float64(8 << 20)}, "[cut: "},
		{"no newline", map[string]any{"stderr": b64(`{"@message":`)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			res, err := h.Restore(ctx, req("hostile", "n", tt.with), nil)
			if err != nil || res.Status != step.Succeeded {
				t.Fatalf("Restore: %+v, %v (want succeeded: the output is only logged)", res, err)
			}
			if tt.want == "" {
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for !logged(logs.All(), tt.want) {
				if time.Now().After(deadline) {
					t.Fatalf("no log line holds %q", tt.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	for _, e := range logs.All() {
		if !utf8.ValidString(e.Message) {
			t.Errorf("log line not valid UTF-8: %q", e.Message)
		}
		if len(e.Message) > host.MaxLogLine+100 {
			t.Errorf("log line of %d bytes, over the cap", len(e.Message))
		}
	}
}

func logged(entries []observer.LoggedEntry, want string) bool {
	for _, e := range entries {
		if strings.Contains(e.Message, want) {
			return true
		}
		for _, f := range e.Context {
			if f.Type == zapcore.StringType && strings.Contains(f.String, want) {
				return true
			}
		}
	}
	return false
}

// FuzzPluginOutput feeds any bytes to a real plugin's stderr and stdout
// (after the handshake): the host neither panics nor hangs, the call is
// judged by the protocol alone, and every log line is valid UTF-8 and
// capped.
func FuzzPluginOutput(f *testing.F) {
	f.Add([]byte(`{"@level":"info","@message":42}`+"\n"), []byte("ok\n"))
	f.Add([]byte("Fran\xe7ois\n{\"@message\":\n"), []byte("1|1|tcp|x|grpc\n"))
	f.Add([]byte(strings.Repeat("a", 70000)), []byte{0xff, '\n', 0})
	f.Add([]byte(`{"@level":null,"@message":"x","@timestamp":"2020-01-01T00:00:00.0000001Z"}`+"\n"), []byte(nil))
	log, logs := observed()
	opts := hostileOpts(f)
	opts.Logger = log
	opts.BuiltinCommand = nil
	h := host.New(withBuiltins(opts))
	defer h.Close()
	f.Fuzz(func(t *testing.T, stderr, stdout []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		with := map[string]any{"stderr": base64.StdEncoding.EncodeToString(stderr), "stdout": base64.StdEncoding.EncodeToString(stdout)}
		res, err := h.Restore(ctx, req("hostile", "n", with), nil)
		if err != nil || res.Status != step.Succeeded {
			t.Fatalf("Restore: %+v, %v", res, err)
		}
		for _, e := range logs.TakeAll() {
			if !utf8.ValidString(e.Message) || len(e.Message) > host.MaxLogLine+100 {
				t.Fatalf("bad log line (%d bytes): %q", len(e.Message), e.Message)
			}
		}
	})
}

// TestBadStartDoesNotHang: a wrong handshake line while a child keeps the
// pipes open, and 100 MB on stdout before any handshake, both fail at once
// with ErrHandshake; the whole process tree is gone after.
func TestBadStartDoesNotHang(t *testing.T) {
	opts := hostOpts(t)
	dir := opts.GraphDir
	pidfile := filepath.Join(dir, "child.pid")
	writeScript(t, filepath.Join(dir, "holder"), "#!/bin/sh\nsleep 600 &\necho $! > "+pidfile+"\necho 'this is not a handshake'\n")
	writeScript(t, filepath.Join(dir, "flood"), "#!/bin/sh\nhead -c 100000000 /dev/zero | tr '\\000' x\necho\nsleep 600\n")
	opts.Plugins["holder"] = graphs.PluginRef{Path: "holder"}
	opts.Plugins["flood"] = graphs.PluginRef{Path: "flood"}
	opts.StartTimeout = 20 * time.Second
	h := newHost(t, opts)
	for _, name := range []string{"holder", "flood"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := h.Describe(ctxT(t, 60*time.Second), name)
			if !errors.Is(err, host.ErrHandshake) {
				t.Fatalf("err = %v, want ErrHandshake", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s: the start must end without waiting for the pipes", d)
			}
			if len(err.Error()) > 4096 {
				t.Errorf("error of %d bytes: quote less", len(err.Error()))
			}
		})
	}
	waitGone(t, readPid(t, pidfile), 5*time.Second)
}

// TestStartTimeoutIsHard: a plugin that never answers is killed at its own
// start timeout (start_timeout in the graph beats the host's), and Close
// during a start ends it at once.
func TestStartTimeoutIsHard(t *testing.T) {
	opts := hostOpts(t)
	ref := opts.Plugins["slowstart"]
	ref.StartTimeout = time.Second
	opts.Plugins["slowstart"] = ref
	opts.StartTimeout = time.Minute
	h := newHost(t, opts)
	start := time.Now()
	_, err := h.Describe(ctxT(t, time.Minute), "slowstart")
	if !errors.Is(err, host.ErrStartTimeout) || !strings.Contains(err.Error(), "within 1s") {
		t.Fatalf("err = %v, want ErrStartTimeout within 1s", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %s", d)
	}

	opts.Plugins["slowstart"] = graphs.PluginRef{Path: "slowstart"}
	h2 := host.New(withBuiltins(opts))
	errc := make(chan error, 1)
	go func() {
		_, err := h2.Describe(context.Background(), "slowstart")
		errc <- err
	}()
	time.Sleep(500 * time.Millisecond)
	start = time.Now()
	h2.Close()
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Close during a start took %s", d)
	}
	if err := <-errc; !errors.Is(err, host.ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}

func withBuiltins(opts host.Options) host.Options {
	if opts.BuiltinCommand == nil {
		opts.BuiltinCommand = hosttest.BuiltinCommand
	}
	return opts
}
