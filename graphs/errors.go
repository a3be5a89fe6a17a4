package graphs

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every *Problem unwraps to one of them, so that callers can
// test a validation failure with errors.Is(err, graphs.ErrCycle).
var (
	// ErrTooLarge is returned when a graph file is over MaxFileSize.
	ErrTooLarge = errors.New("graph file too large")
	// ErrEncoding is returned when a graph file is not valid UTF-8.
	ErrEncoding = errors.New("graph file is not valid UTF-8")
	// ErrSyntax is returned when a graph file is neither valid YAML nor valid
	// JSON, or is not a mapping at its top level.
	ErrSyntax = errors.New("graph file syntax")
	// ErrAliasBomb is returned when YAML aliases expand beyond the alias budget
	// (the "billion laughs" attack), or nesting is deeper than MaxDepth.
	ErrAliasBomb = errors.New("yaml aliases expand too much")
	// ErrSchema is returned for an unknown field, a wrong type, a duplicate key
	// or a missing required field.
	ErrSchema = errors.New("graph schema")
	// ErrVersion is returned when the graph file's version is missing or not
	// supported.
	ErrVersion = errors.New("unsupported graph version")
	// ErrEmpty is returned when a graph has no nodes.
	ErrEmpty = errors.New("empty graph")
	// ErrBadValue is returned when a field holds a value outside what it
	// allows: an unknown kind or criticality, a bad duration, negative
	// retries, a bad sha256, an id outside the safe charset.
	ErrBadValue = errors.New("bad value")
	// ErrDuplicateID is returned when two nodes share an id.
	ErrDuplicateID = errors.New("duplicate node id")
	// ErrUnknownNode is returned when a dependency, an interface end, a
	// placeholder or a target names a node that does not exist.
	ErrUnknownNode = errors.New("unknown node")
	// ErrSelfDependency is returned when a node depends on itself.
	ErrSelfDependency = errors.New("node depends on itself")
	// ErrInterfaceEnds is returned when an interface node does not have
	// exactly two distinct ends, or a non-interface node has `between`.
	ErrInterfaceEnds = errors.New("bad interface ends")
	// ErrCycle is returned when dependencies form a cycle.
	ErrCycle = errors.New("dependency cycle")
	// ErrUnknownPlugin is returned when a node has no plugin, or names one
	// that is neither built in nor declared under `plugins`.
	ErrUnknownPlugin = errors.New("unknown plugin")
	// ErrZone is returned for a missing or unknown zone, a node that
	// depends on a less trusted zone, or a cross-zone interface that is not
	// in the less trusted zone.
	ErrZone = errors.New("bad zone")
	// ErrUnknownScanner is returned when a node's scan names a scanner not
	// declared under scanners.
	ErrUnknownScanner = errors.New("unknown scanner")
	// ErrEvidence is returned when incident.require_evidence is set and a
	// node wipes a machine that no evidence node preserves.
	ErrEvidence = errors.New("evidence required before wipe")
	// ErrPlaceholder is returned when a `${...}` placeholder in `with` is
	// malformed or refers to a node that is not an ancestor.
	ErrPlaceholder = errors.New("bad placeholder")
)

// Problem is one thing wrong with a graph file. Line and Col are 1-based;
// they are zero only when the problem has no place in the file (the file is
// over the size limit and was not read). Node is the id of the node concerned
// ("" when none), Field the field path (`depends_on`, `plugins.pacs.sha256`),
// Value the offending value as written.
type Problem struct {
	File    string
	Line    int
	Col     int
	Node    string
	Field   string
	Value   string
	Message string

	err error // the sentinel
}

// Error formats the problem as `FILE:LINE:COL: node "ID": message`; the node
// part is left out when there is no node, the position when it is unknown.
func (p *Problem) Error() string {
	var b strings.Builder
	file := p.File
	if file == "" {
		file = "<input>"
	}
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	b.WriteString(": ")
	if p.Node != "" {
		fmt.Fprintf(&b, "node %q: ", p.Node)
	}
	b.WriteString(p.Message)
	return b.String()
}

// Unwrap returns the problem's sentinel error (ErrCycle, ErrBadValue …).
func (p *Problem) Unwrap() error { return p.err }

// ValidationError holds every problem found in a graph file, sorted by
// position.
type ValidationError struct {
	Problems []*Problem
}

// Error returns one line per problem.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.Is finds their sentinels.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}
