package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Redacted replaces a secret value wherever it would be persisted or logged.
const Redacted = "[redacted]"

// minSecretLen is the shortest value treated as a secret: redacting one- or
// two-character values would shred every message and protect nothing.
const minSecretLen = 3

// minLineLen is the shortest line of a multi-line secret (a PEM key, a
// kubeconfig) redacted on its own: a log or an error may quote one line of
// it. Shorter lines ("}", "--") would shred every message.
const minLineLen = 4

// Redactor remembers the secret values resolved from `${secret:…}`
// placeholders and removes them from text before it is persisted or
// logged: the whole value, and each line of a multi-line value (lines
// shorter than minLineLen excepted). It is safe for concurrent use; values
// are kept for the life of the process, in memory only.
type Redactor struct {
	mu     sync.RWMutex
	values []string     // longest first, so that a secret holding another is removed whole
	n      atomic.Int32 // len(values): most runs have no secret, and every log line asks
}

// NewRedactor returns an empty Redactor.
func NewRedactor() *Redactor { return &Redactor{} }

// Add remembers a secret value, and each line of it.
func (r *Redactor) Add(v string) {
	r.add(v, minSecretLen)
	if !strings.ContainsAny(v, "\r\n") {
		return
	}
	for _, line := range strings.FieldsFunc(v, func(c rune) bool { return c == '\n' || c == '\r' }) {
		r.add(strings.TrimSpace(line), minLineLen)
	}
}

func (r *Redactor) add(v string, min int) {
	if len(v) < min {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.values {
		if have == v {
			return
		}
	}
	r.values = append(r.values, v)
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
	r.n.Store(int32(len(r.values)))
}

// Contains reports whether s holds a known secret (or a line of one).
func (r *Redactor) Contains(s string) bool {
	if r.none() || s == "" {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.values {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// none tells whether no secret is known (yet).
func (r *Redactor) none() bool { return r == nil || r.n.Load() == 0 }

// String returns s with every known secret replaced by Redacted.
func (r *Redactor) String(s string) string {
	if r.none() || s == "" {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// Map returns a copy of m with every value redacted (nil stays nil).
func (r *Redactor) Map(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = r.String(v)
	}
	return out
}

// WrapLogger returns a logger that redacts known secrets from the message
// and string fields of every entry before l's core writes it. Give it to
// anything that may log what a plugin says (the plugin host).
func (r *Redactor) WrapLogger(l *zap.Logger) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return &redactCore{Core: c, r: r}
	}))
}

type redactCore struct {
	zapcore.Core
	r *Redactor
}

func (c *redactCore) With(fields []zapcore.Field) zapcore.Core {
	return &redactCore{Core: c.Core.With(c.fields(fields)), r: c.r}
}

func (c *redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *redactCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if c.r.none() {
		return c.Core.Write(e, fields) // nothing to redact: no copy of the fields
	}
	e.Message = c.r.String(e.Message)
	return c.Core.Write(e, c.fields(fields))
}

func (c *redactCore) fields(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			f.String = c.r.String(f.String)
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				f = zap.String(f.Key, c.r.String(err.Error()))
			}
		case zapcore.StringerType, zapcore.ReflectType:
			f = zap.String(f.Key, c.r.String(zapFieldString(f)))
		}
		out[i] = f
	}
	return out
}

func zapFieldString(f zapcore.Field) string {
	enc := zapcore.NewMapObjectEncoder()
	f.AddTo(enc)
	if v, ok := enc.Fields[f.Key]; ok {
		if s, ok := v.(string); ok {
			return s
		}
		return strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(v), "\n", " "))
	}
	return ""
}
