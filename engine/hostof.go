package engine

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// NewHostFunc builds the step.Host of a run from the run's graph (the one
// the engine runs: a new run's, or a resumed run's snapshot or edited
// graph) and the engine's logger (secrets redacted). See Options.NewHost.
type NewHostFunc func(g *graphs.Graph, log *zap.Logger) (step.Host, error)

// hostOf returns the host that runs steps: the one given to New, else the
// one Options.NewHost builds on the first call that needs it, with g, kept
// for the engine's life (Close closes it). A run with nothing left to do
// builds none, so it never starts a plugin. When building fails, every call
// through the returned host fails with that error.
func (e *Engine) hostOf(g *graphs.Graph) step.Host {
	if e.host != nil {
		return e.host
	}
	e.hostMu.Lock()
	defer e.hostMu.Unlock()
	if e.built == nil && e.buildErr == nil {
		switch {
		case e.closed:
			e.buildErr = errors.New("engine closed")
		case e.opts.NewHost == nil:
			e.buildErr = errors.New("no plugin host: New was given none and Options.NewHost is nil")
		default:
			h, err := e.opts.NewHost(g, e.log)
			if err != nil {
				e.buildErr = fmt.Errorf("start plugin host: %w", err)
			} else if h == nil {
				e.buildErr = errors.New("start plugin host: Options.NewHost returned none")
			}
			e.built = h
		}
	}
	if e.buildErr != nil {
		return errHost{e.buildErr}
	}
	return e.built
}

// Close closes the plugin host the engine built through Options.NewHost,
// if it built one (a host given to New stays the caller's to close). Call
// it once the engine's runs are over.
func (e *Engine) Close() error {
	e.hostMu.Lock()
	defer e.hostMu.Unlock()
	e.closed = true
	if e.built == nil {
		return nil
	}
	h := e.built
	e.built, e.buildErr = nil, errors.New("engine closed")
	return h.Close()
}

// errHost fails every call with the error that kept the host from being
// built.
type errHost struct{ err error }

var _ step.Host = errHost{}

func (h errHost) Describe(context.Context, string) (step.PluginInfo, error) {
	return step.PluginInfo{}, h.err
}
func (h errHost) Validate(context.Context, step.Request) ([]string, error) { return nil, h.err }
func (h errHost) Check(context.Context, step.Request) (step.CheckResult, error) {
	return step.CheckResult{}, h.err
}
func (h errHost) Restore(context.Context, step.Request, func(step.Event)) (step.Result, error) {
	return step.Result{}, h.err
}
func (h errHost) Verify(context.Context, step.Request) (step.Result, error) {
	return step.Result{}, h.err
}
func (h errHost) Close() error { return nil }
