package web

import (
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// stateReader is what the pages read a state from: the file or its control
// socket (control.Reader), or Options.Backend.
type stateReader interface {
	view.Source
	Runs() ([]state.Run, error)
	Operators() ([]state.Operator, error)
	Live() string
	Close() error
}

var _ stateReader = (*control.Reader)(nil)

// openState opens the served state for reading.
func (s *Server) openState() (stateReader, error) {
	if s.opts.Backend != nil {
		return backendReader{Backend: s.opts.Backend, live: s.opts.Live}, nil
	}
	return control.Open(s.opts.StatePath)
}

// openWriter opens the served state for an operator's action: the file
// (*state.LockedError while a run holds it), or the backend.
func (s *Server) openWriter(holder string) (state.Backend, error) {
	if s.opts.Backend != nil {
		return backendWriter{s.opts.Backend}, nil
	}
	return state.Open(s.opts.StatePath, state.Options{Holder: holder})
}

func (s *Server) logPath() string {
	if s.opts.LogPath != "" {
		return s.opts.LogPath
	}
	return s.opts.StatePath + ".log"
}

// backendReader reads Options.Backend; Close leaves it open.
type backendReader struct {
	state.Backend
	live func() string
}

func (b backendReader) Live() string {
	if b.live == nil {
		return ""
	}
	return b.live()
}

func (backendReader) Close() error { return nil }

// backendWriter is Options.Backend for one action; Close leaves it open.
type backendWriter struct{ state.Backend }

func (backendWriter) Close() error { return nil }
