package host

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// MaxLogLine is the longest log line the host writes for a plugin; a longer
// line is cut, and the cut is said at its end ("… [cut: N more bytes]").
const MaxLogLine = 8 << 10

// Log budget of a plugin process's own stdout and stderr: a burst of
// logBurst lines, then logRate lines a second. Lines over the budget are
// counted, not written; the count is logged when lines flow again and when
// the process ends.
const (
	logBurst = 10000
	logRate  = 200
)

// lineLogger logs the lines of one stream (stdout or stderr) of a plugin
// process, each line capped, within the log budget. Lines that look like
// hclog JSON entries are logged at their level with their fields, whatever
// the types of their values.
type lineLogger struct {
	p      *proc
	z      *zap.Logger
	stream string

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int64
	invalid bool // a line was not valid UTF-8 (said once)
}

func newLineLogger(p *proc, z *zap.Logger, stream string) *lineLogger {
	return &lineLogger{p: p, z: z, stream: stream, tokens: logBurst, last: time.Now()}
}

// drain logs every line read from br until its end.
func (l *lineLogger) drain(br *bufio.Reader) {
	for {
		line, cut, err := readCapped(br, MaxLogLine)
		if len(line) > 0 || cut > 0 || err == nil {
			l.line(line, cut)
		}
		if err != nil {
			return
		}
	}
}

// line logs one line (already capped to MaxLogLine; cut more bytes were dropped).
func (l *lineLogger) line(b []byte, cut int64) {
	if len(b) > MaxLogLine {
		cut += int64(len(b) - MaxLogLine)
		b = b[:MaxLogLine]
	}
	b = bytes.TrimRight(b, "\r")
	text, valid := validText(b)
	if cut > 0 {
		text += fmt.Sprintf(" … [cut: %d more bytes]", cut)
	}
	l.p.tail.add(text)
	if !l.allow() {
		return
	}
	if !valid && l.noteInvalid() {
		l.p.log(l.z, zapcore.WarnLevel, "plugin "+l.stream+" is not valid UTF-8: invalid bytes replaced by U+FFFD", zap.String("stream", l.stream))
	}
	if l.stream == "stderr" && len(b) > 0 && b[0] == '{' && cut == 0 {
		if lvl, msg, fields, ok := parseHclog(b); ok {
			l.p.log(l.z, lvl, msg, append(fields, zap.String("stream", l.stream))...)
			return
		}
	}
	l.p.log(l.z, zapcore.InfoLevel, text, zap.String("stream", l.stream))
}

// allow takes one line from the budget; when lines were dropped and the
// budget allows again, it first says how many.
func (l *lineLogger) allow() bool {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(logBurst, l.tokens+now.Sub(l.last).Seconds()*logRate)
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		l.mu.Unlock()
		return false
	}
	l.tokens--
	dropped := l.dropped
	l.dropped = 0
	l.mu.Unlock()
	if dropped > 0 {
		l.sayDropped(dropped)
	}
	return true
}

func (l *lineLogger) noteInvalid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := !l.invalid
	l.invalid = true
	return first
}

// finish says how many lines were dropped since the last one written.
func (l *lineLogger) finish() {
	l.mu.Lock()
	dropped := l.dropped
	l.dropped = 0
	l.mu.Unlock()
	if dropped > 0 {
		l.sayDropped(dropped)
	}
}

func (l *lineLogger) sayDropped(n int64) {
	l.p.log(l.z, zapcore.WarnLevel, fmt.Sprintf("plugin %s: %d lines not logged (over the log budget of %d lines then %d a second)", l.stream, n, logBurst, logRate),
		zap.String("stream", l.stream), zap.Int64("dropped_lines", n))
}

// validText returns b as a string with invalid UTF-8 replaced by U+FFFD,
// and whether it was valid.
func validText(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), true
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), false
}

// parseHclog reads an hclog JSON entry; any value type is accepted
// (rendered as text), so that no line can upset the host.
func parseHclog(b []byte) (zapcore.Level, string, []zap.Field, bool) {
	var entry map[string]any
	if json.Unmarshal(b, &entry) != nil {
		return 0, "", nil, false
	}
	rawMsg, ok := entry["@message"]
	if !ok {
		return 0, "", nil, false
	}
	msg := anyText(rawMsg)
	lvl := zapLevel(anyText(entry["@level"]))
	fields := make([]zap.Field, 0, len(entry))
	for k, v := range entry {
		if strings.HasPrefix(k, "@") && k != "@module" {
			continue
		}
		if k == "plugin" || k == "stream" || k == "node" {
			k = "plugin_" + k
		}
		fields = append(fields, zap.String(k, anyText(v)))
	}
	return lvl, msg, fields, true
}

// anyText renders a decoded JSON value as text.
func anyText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}
