package host

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// hclogFor returns the hclog logger handed to go-plugin for one plugin: it
// writes JSON entries that hclogWriter forwards to zap. go-plugin logs its
// own events there and re-logs the plugin's stderr lines through it.
func hclogFor(p *proc, z *zap.Logger) hclog.Logger {
	level := hclog.Info
	if z.Core().Enabled(zapcore.DebugLevel) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "plugin", Level: level, JSONFormat: true,
		Output: &hclogWriter{p: p, z: z},
	})
}

// hclogWriter turns hclog JSON lines into zap entries with plugin= and
// (when exactly one call is in flight) node= fields. It also records the
// exit status go-plugin logs when the process ends.
type hclogWriter struct {
	p *proc
	z *zap.Logger
}

func (w *hclogWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte{'\n'}) {
		w.writeLine(line)
	}
	return len(b), nil
}

func (w *hclogWriter) writeLine(line []byte) {
	var entry map[string]any
	if err := json.Unmarshal(line, &entry); err != nil {
		w.p.log(w.z, zapcore.InfoLevel, string(line))
		return
	}
	msg, _ := entry["@message"].(string)
	lvl, _ := entry["@level"].(string)
	if msg == "plugin process exited" {
		if e, ok := entry["error"].(string); ok {
			w.p.setExit(e)
		} else {
			w.p.setExit("exit status 0")
		}
	}
	fields := make([]zap.Field, 0, len(entry))
	for k, v := range entry {
		if strings.HasPrefix(k, "@") && k != "@module" {
			continue
		}
		if k == "plugin" { // go-plugin's own field: the binary path
			k = "binary"
		}
		fields = append(fields, zap.Any(k, v))
	}
	w.p.log(w.z, zapLevel(lvl), msg, fields...)
}

func zapLevel(l string) zapcore.Level {
	switch strings.ToLower(l) {
	case "trace", "debug":
		return zapcore.DebugLevel
	case "warn":
		return zapcore.WarnLevel
	case "error":
		return zapcore.ErrorLevel
	}
	return zapcore.InfoLevel
}

// lineWriter logs every line written to it (the plugin's os.Stdout and
// os.Stderr, forwarded by go-plugin) and keeps them in the crash tail.
type lineWriter struct {
	p      *proc
	z      *zap.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.p.tail.add(line)
		w.p.log(w.z, zapcore.InfoLevel, line, zap.String("stream", w.stream))
	}
	if len(w.buf) > 64<<10 { // an endless line: log what we have
		w.p.log(w.z, zapcore.InfoLevel, string(w.buf), zap.String("stream", w.stream))
		w.buf = w.buf[:0]
	}
	return len(b), nil
}

// tailBuffer keeps the last lines a plugin wrote to its stderr, for crash
// messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
	max   int
	part  []byte
}

func newTail(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write receives the raw stderr of the plugin process (go-plugin copies it
// line by line).
func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	t.part = append(t.part, b...)
	var done []string
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		done = append(done, string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	t.mu.Unlock()
	for _, l := range done {
		t.add(l)
	}
	return len(b), nil
}

func (t *tailBuffer) add(line string) {
	line = strings.TrimRight(line, "\r")
	if isNoise(line) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// isNoise drops go-plugin's own JSON log lines below warn level and empty
// lines from the crash tail.
func isNoise(line string) bool {
	s := strings.TrimSpace(line)
	if s == "" {
		return true
	}
	if strings.HasPrefix(s, "{") && strings.Contains(s, `"@level"`) {
		return !strings.Contains(s, `"@level":"error"`) && !strings.Contains(s, `"@level":"warn"`)
	}
	return false
}

// String returns the kept lines joined.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.part))
	}
	return strings.Join(lines, "\n")
}
