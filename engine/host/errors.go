package host

import (
	"errors"
	"fmt"
)

// Sentinel errors of the plugin host; match them with errors.Is. The
// returned errors are PluginErrors naming the plugin and its path.
var (
	// ErrUndeclared is returned when a node names a plugin that is neither
	// built in nor declared in the graph's plugins.
	ErrUndeclared = errors.New("not built in and not declared in the graph's plugins")
	// ErrNotFound is returned when a plugin's binary does not exist.
	ErrNotFound = errors.New("binary not found")
	// ErrNotExecutable is returned when a plugin's binary is a folder or
	// lacks execute permission.
	ErrNotExecutable = errors.New("binary not executable")
	// ErrChecksum is returned when a binary's SHA-256 differs from the
	// pinned one: the binary changed since it was pinned.
	ErrChecksum = errors.New("binary checksum mismatch")
	// ErrHandshake is returned when the process started but did not answer
	// as a reprise plugin (wrong handshake, protocol version or protocol).
	ErrHandshake = errors.New("plugin handshake failed")
	// ErrStartTimeout is returned when a plugin did not complete its
	// handshake within Options.StartTimeout.
	ErrStartTimeout = errors.New("plugin start timed out")
	// ErrCrashed is returned for the calls in flight when a plugin process
	// dies; the next call starts it again.
	ErrCrashed = errors.New("plugin crashed")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("plugin host closed")
)

// PluginError is an error about one plugin process: it names the plugin
// and the binary's path and wraps one of the sentinel errors.
type PluginError struct {
	Plugin string
	Path   string // "" when unknown
	Err    error
	Detail string // the crash text, the handshake output, the hashes …
}

// Error returns `plugin "NAME" (PATH): what: detail`.
func (e *PluginError) Error() string {
	s := fmt.Sprintf("plugin %q", e.Plugin)
	if e.Path != "" {
		s += fmt.Sprintf(" (%s)", e.Path)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *PluginError) Unwrap() error { return e.Err }

// Permanent reports whether the error cannot go away by trying again in
// the same run: an undeclared plugin, a missing or non-executable binary, a
// checksum mismatch or a refused handshake. The engine does not retry a
// step that failed so.
func (e *PluginError) Permanent() bool {
	switch e.Err {
	case ErrUndeclared, ErrNotFound, ErrNotExecutable, ErrChecksum, ErrHandshake:
		return true
	}
	return false
}
