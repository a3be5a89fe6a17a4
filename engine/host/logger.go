package host

import (
	"bytes"
	"encoding/json"
	"fmt"
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
		if len(line) > MaxLogLine {
			line = line[:MaxLogLine]
		}
		text, _ := validText(line)
		w.p.log(w.z, zapcore.InfoLevel, text)
		return
	}
	msg := anyText(entry["@message"])
	if len(msg) > MaxLogLine {
		msg = fmt.Sprintf("%s … [cut: %d more bytes]", msg[:MaxLogLine], len(msg)-MaxLogLine)
	}
	lvl := anyText(entry["@level"])
	fields := make([]zap.Field, 0, len(entry))
	for k, v := range entry {
		if strings.HasPrefix(k, "@") && k != "@module" {
			continue
		}
		if k == "plugin" { // go-plugin's own field: the binary path
			k = "binary"
		}
		fields = append(fields, zap.String(k, anyText(v)))
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
// os.Stderr, forwarded by go-plugin's stdio stream) through a lineLogger:
// capped, valid UTF-8, within the log budget, kept in the crash tail.
type lineWriter struct {
	l    *lineLogger
	mu   sync.Mutex
	buf  []byte
	skip bool // dropping the rest of a line already logged cut
}

func newLineWriter(p *proc, z *zap.Logger, stream string) *lineWriter {
	return &lineWriter{l: newLineLogger(p, z, stream)}
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if w.skip {
			if i < 0 {
				return n, nil
			}
			w.skip = false
			b = b[i+1:]
			continue
		}
		if i < 0 {
			room := MaxLogLine - len(w.buf)
			if len(b) <= room {
				w.buf = append(w.buf, b...)
				return n, nil
			}
			w.buf = append(w.buf, b[:room]...)
			w.l.line(append(w.buf, " … [cut: the line goes on]"...), 0)
			w.buf, w.skip = w.buf[:0], true
			return n, nil
		}
		line, cut := b[:i], 0
		if room := MaxLogLine - len(w.buf); len(line) > room {
			line, cut = line[:room], len(line)-room
		}
		w.buf = append(w.buf, line...)
		w.l.line(w.buf, int64(cut))
		w.buf = w.buf[:0]
		b = b[i+1:]
	}
	return n, nil
}

// maxTailLine is the longest line a crash message quotes.
const maxTailLine = 512

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
	if len(line) > maxTailLine {
		line = fmt.Sprintf("%s … [cut: %d more bytes]", strings.ToValidUTF8(line[:maxTailLine], ""), len(line)-maxTailLine)
	}
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
