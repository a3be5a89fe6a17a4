// Package enginetest holds test helpers for the engine and its users: an
// in-memory PluginHost for scheduler tests, and fixtures (graphs, stores).
// End-to-end tests use real plugin processes (internal/hosttest).
package enginetest

import (
	"context"
	"sync"

	"github.com/reprise-si/reprise/engine/step"
)

// FakeHost is an in-memory step.Host. By default every step
// succeeds at once; set the funcs to script failures, delays, gates or
// outputs. It records the calls and the peak concurrency. Safe for
// concurrent use (the funcs must be too).
type FakeHost struct {
	// OnRestore, when set, answers Restore calls (nil: succeed).
	OnRestore func(ctx context.Context, req step.Request, emit func(step.Event)) (step.Result, error)
	// OnCheck, when set, answers Check calls (nil: not restored).
	OnCheck func(ctx context.Context, req step.Request) (step.CheckResult, error)
	// OnValidate, when set, answers Validate calls (nil: no problems).
	OnValidate func(ctx context.Context, req step.Request) ([]string, error)
	// OnVerify, when set, answers Verify calls (nil: succeed).
	OnVerify func(ctx context.Context, req step.Request) (step.Result, error)

	mu        sync.Mutex
	calls     []Call
	running   int
	peak      int
	byPlugin  map[string]int
	peakByPlg map[string]int
}

// Call is one recorded call.
type Call struct {
	Op  string // "restore", "check", "validate", "verify"
	Req step.Request
}

var _ step.Host = (*FakeHost)(nil)

// Calls returns the calls so far, in the order they started.
func (h *FakeHost) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

// Restored returns the node ids whose Restore was called, in call order
// (a node retried appears once per attempt).
func (h *FakeHost) Restored() []string {
	var ids []string
	for _, c := range h.Calls() {
		if c.Op == "restore" {
			ids = append(ids, c.Req.NodeID)
		}
	}
	return ids
}

// Peak returns the most Restore calls that ran at once, overall and for plugin.
func (h *FakeHost) Peak(plugin string) (overall, forPlugin int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak, h.peakByPlg[plugin]
}

func (h *FakeHost) record(op string, req step.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, Call{Op: op, Req: req})
}

// Describe implements step.Host.
func (h *FakeHost) Describe(_ context.Context, plugin string) (step.PluginInfo, error) {
	return step.PluginInfo{Name: plugin, Version: "fake"}, nil
}

// Validate implements step.Host.
func (h *FakeHost) Validate(ctx context.Context, req step.Request) ([]string, error) {
	h.record("validate", req)
	if h.OnValidate != nil {
		return h.OnValidate(ctx, req)
	}
	return nil, nil
}

// Check implements step.Host.
func (h *FakeHost) Check(ctx context.Context, req step.Request) (step.CheckResult, error) {
	h.record("check", req)
	if h.OnCheck != nil {
		return h.OnCheck(ctx, req)
	}
	return step.CheckResult{Message: "fake: not restored"}, nil
}

// Restore implements step.Host.
func (h *FakeHost) Restore(ctx context.Context, req step.Request, onEvent func(step.Event)) (step.Result, error) {
	h.mu.Lock()
	h.calls = append(h.calls, Call{Op: "restore", Req: req})
	if h.byPlugin == nil {
		h.byPlugin, h.peakByPlg = map[string]int{}, map[string]int{}
	}
	h.running++
	h.byPlugin[req.Plugin]++
	h.peak = max(h.peak, h.running)
	h.peakByPlg[req.Plugin] = max(h.peakByPlg[req.Plugin], h.byPlugin[req.Plugin])
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running--
		h.byPlugin[req.Plugin]--
		h.mu.Unlock()
	}()
	if h.OnRestore != nil {
		return h.OnRestore(ctx, req, onEvent)
	}
	return step.Result{Status: step.Succeeded}, nil
}

// Verify implements step.Host.
func (h *FakeHost) Verify(ctx context.Context, req step.Request) (step.Result, error) {
	h.record("verify", req)
	if h.OnVerify != nil {
		return h.OnVerify(ctx, req)
	}
	return step.Result{Status: step.Succeeded}, nil
}

// Close implements step.Host.
func (h *FakeHost) Close() error { return nil }
