package sdk

import (
	"fmt"
	"maps"
	"sync"
	"unicode/utf8"

	"github.com/reprise-si/reprise/internal/wire"
)

// Level is the level of a log line sent with Stream.Log.
type Level string

// The log levels.
const (
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// Stream carries a Restore call's events back to the engine, in order. Its
// methods are safe for concurrent use. Once Restore has returned, events are
// dropped.
type Stream struct {
	mu       sync.Mutex
	send     func(ev event) error
	done     bool
	err      error // first send error: the engine has gone away
	message  string
	outputs  map[string]string
	bytes    int    // of outputs' keys and values
	overflow string // why outputs were refused: the step fails with it
}

// event is one streamed event; exactly one group of fields is set.
type event struct {
	kind    string // "log", "progress", "output"
	level   Level
	message string
	percent float64
	key     string
	value   string
}

func newStream(send func(ev event) error) *Stream {
	return &Stream{send: send, outputs: map[string]string{}}
}

func (s *Stream) emit(ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.err != nil {
		return
	}
	s.err = s.send(ev)
}

// Log sends one log line at level.
func (s *Stream) Log(level Level, message string) {
	s.emit(event{kind: "log", level: level, message: message})
}

// Logf sends one info log line.
func (s *Stream) Logf(format string, args ...any) {
	s.Log(LevelInfo, fmt.Sprintf(format, args...))
}

// Warnf sends one warning log line.
func (s *Stream) Warnf(format string, args ...any) {
	s.Log(LevelWarn, fmt.Sprintf(format, args...))
}

// Progress reports how far the step is: percent from 0 to 100 (clamped)
// and a short text.
func (s *Stream) Progress(percent float64, message string) {
	percent = min(max(percent, 0), 100)
	s.emit(event{kind: "progress", percent: percent, message: message})
}

// Output sets one output of the node; dependents receive it in their
// Request.Inputs. Setting a key again replaces its value.
//
// Outputs past wire.MaxOutputBytes in all are refused: they are neither
// kept nor sent, and the step fails saying so (the graph's own, smaller,
// limits are the host's to enforce).
func (s *Stream) Output(key, value string) {
	s.mu.Lock()
	old, had := s.outputs[key]
	size := s.bytes + len(key) + len(value)
	if had {
		size -= len(key) + len(old)
	}
	if s.overflow != "" || size > wire.MaxOutputBytes {
		if s.overflow == "" {
			s.overflow = fmt.Sprintf("output %q: %d bytes would make the outputs %d bytes, over the %d a plugin may send; nothing stored",
				capText(key, 200), len(value), size, wire.MaxOutputBytes)
		}
		s.mu.Unlock()
		return
	}
	s.outputs[key] = value
	s.bytes = size
	s.mu.Unlock()
	s.emit(event{kind: "output", key: key, value: value})
}

// SetMessage sets the message of the final result (for instance "restored
// 12 studies").
func (s *Stream) SetMessage(message string) {
	s.mu.Lock()
	s.message = message
	s.mu.Unlock()
}

// MaxOutputBytes is the most a step may send as outputs in all, keys and
// values (a graph's own limits are smaller; see graphs.Limits).
const MaxOutputBytes = wire.MaxOutputBytes

// maxEventText bounds a log or progress message as sent to the host; a
// longer one is cut, the cut said at its end.
const maxEventText = 1 << 20

// capText cuts s to at most max bytes (on a rune boundary), saying so.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s … [cut: %d more bytes]", s[:cut], len(s)-cut)
}

// finish stops the stream and returns the final message and outputs.
func (s *Stream) finish() (string, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	return s.message, maps.Clone(s.outputs)
}
