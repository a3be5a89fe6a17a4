package sdk

import (
	"context"
	"errors"
)

// Info is what a plugin says of itself (`reprise plugins` shows it).
type Info struct {
	Name        string
	Version     string
	Description string
	// Kinds lists the node kinds the plugin serves ("application", "data" …);
	// empty: every kind.
	Kinds []string
	// Fields documents the keys of a node's `with` mapping. When the plugin
	// does not implement Validator, the SDK validates configs against them
	// (unknown keys, missing required keys). FieldsOf builds them from a
	// config struct.
	Fields []Field
}

// Field documents one key of a node's `with` mapping.
type Field struct {
	Name        string
	Type        string // "string", "int", "bool", "duration", "[]string" …
	Required    bool
	Description string
}

// Plugin is the core of a reprise plugin.
type Plugin interface {
	// Describe says what the plugin is. It is called often: keep it cheap.
	Describe(ctx context.Context) (Info, error)
	// Restore runs the restore step of req's node, reporting through s.
	// Returning nil means the node is restored; an error fails the step with
	// the error's text (return Waiting(…) to park the node for approval).
	// In dry-run mode (req.DryRun) it must change nothing.
	Restore(ctx context.Context, req *Request, s *Stream) error
}

// Checker is implemented by plugins that can tell whether a node is already
// in its restored state (used on resume and by dry runs). Check must have
// no side effects. Without it a node always counts as not restored.
type Checker interface {
	Check(ctx context.Context, req *Request) (CheckResult, error)
}

// Verifier is implemented by plugins with a health check run after a
// restore. Without it Verify succeeds with "no verify step".
type Verifier interface {
	// Verify returns nil when the node is healthy; an error fails the
	// verification with its text.
	Verify(ctx context.Context, req *Request) (Result, error)
}

// Validator is implemented by plugins that validate configs themselves.
// Without it the SDK checks the config's keys against Info.Fields.
type Validator interface {
	// Validate returns the problems of req's config (nil: valid). No side
	// effects. An error means validation itself could not run.
	Validate(ctx context.Context, req *Request) ([]string, error)
}

// CheckResult says whether a node is already restored.
type CheckResult struct {
	Restored bool
	Message  string
	// Outputs are the node's outputs as it stands, when Restored: what
	// Restore would have set (dependents use them). If a dependent uses an
	// output missing here, the engine runs Restore again after a crash.
	Outputs map[string]string
}

// Result is the outcome of a Verify call.
type Result struct {
	Message string
	// Failed marks the node unhealthy (the same as returning an error).
	Failed  bool
	Outputs map[string]string
}

// Unsupported is an embeddable default for the optional capabilities: a
// plugin that embeds it says explicitly that it cannot check, verify or
// validate beyond its declared fields, and can later override one method.
type Unsupported struct{}

var (
	_ Checker  = Unsupported{}
	_ Verifier = Unsupported{}
)

// Check always answers "not restored".
func (Unsupported) Check(context.Context, *Request) (CheckResult, error) {
	return CheckResult{Restored: false, Message: "check not supported"}, nil
}

// Verify always succeeds with "no verify step".
func (Unsupported) Verify(context.Context, *Request) (Result, error) {
	return Result{Message: "no verify step"}, nil
}

// WaitingError parks a node for an operator's approval; return it from
// Restore through Waiting.
type WaitingError struct{ Message string }

// Error returns the message shown to the operator.
func (e *WaitingError) Error() string { return e.Message }

// Waiting returns an error that makes Restore answer "waiting" with message
// instead of failing: the engine parks the node until an operator approves it.
func Waiting(message string) error { return &WaitingError{Message: message} }

// IsWaiting reports whether err asks for approval, and its message.
func IsWaiting(err error) (string, bool) {
	var w *WaitingError
	if errors.As(err, &w) {
		return w.Message, true
	}
	return "", false
}
