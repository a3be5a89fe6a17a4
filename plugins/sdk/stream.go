package sdk

import (
	"fmt"
	"maps"
	"sync"
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
	mu      sync.Mutex
	send    func(ev event) error
	done    bool
	err     error // first send error: the engine has gone away
	message string
	outputs map[string]string
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
func (s *Stream) Output(key, value string) {
	s.mu.Lock()
	s.outputs[key] = value
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

// finish stops the stream and returns the final message and outputs.
func (s *Stream) finish() (string, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	return s.message, maps.Clone(s.outputs)
}
