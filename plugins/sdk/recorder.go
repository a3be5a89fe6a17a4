package sdk

import (
	"encoding/json"
	"maps"
	"sync"
)

// Event is one event a Stream sent, as a plugin's unit test sees it.
type Event struct {
	Kind    string // "log", "progress" or "output"
	Level   Level  // log
	Message string // log line or progress text
	Percent float64
	Key     string // output
	Value   string
}

// Recorder is a Stream that keeps what it receives, for a plugin's own unit
// tests (no process, no gRPC): pass Recorder.Stream to Restore, then read
// Events, Outputs and Message.
type Recorder struct {
	Stream *Stream
	mu     sync.Mutex
	events []Event
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	r.Stream = newStream(func(ev event) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, Event{Kind: ev.kind, Level: ev.level, Message: ev.message,
			Percent: ev.percent, Key: ev.key, Value: ev.value})
		return nil
	})
	return r
}

// Events returns the events received so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Outputs returns the outputs set so far.
func (r *Recorder) Outputs() map[string]string {
	r.Stream.mu.Lock()
	defer r.Stream.mu.Unlock()
	return maps.Clone(r.Stream.outputs)
}

// Message returns the result message set with SetMessage.
func (r *Recorder) Message() string {
	r.Stream.mu.Lock()
	defer r.Stream.mu.Unlock()
	return r.Stream.message
}

// NewRequest builds a Request for node with config, as the engine would
// send it (attempt 1, normal mode), for a plugin's unit tests. It panics if
// config cannot be encoded as JSON (a test's own mistake).
func NewRequest(node string, config map[string]any) *Request {
	if config == nil {
		config = map[string]any{}
	}
	js, err := json.Marshal(config)
	if err != nil {
		panic("sdk.NewRequest: " + err.Error())
	}
	var decoded map[string]any
	_ = json.Unmarshal(js, &decoded)
	return &Request{RunID: "test-run", NodeID: node, Attempt: 1, Config: decoded, ConfigJSON: js,
		Inputs: map[string]map[string]string{}}
}
