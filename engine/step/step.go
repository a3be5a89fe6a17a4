// Package step is the contract between the engine and whatever runs a node's
// restore step: the request, the streamed events, the results, and the Host
// interface that runs them. The scheduler (package engine) calls a Host;
// engine/host implements it with plugin processes. Both import this package
// and neither imports the other, so a second executor (remote agents) only
// needs this package.
package step

import (
	"context"
	"time"

	"github.com/reprise-si/reprise/graphs"
)

// Mode says whether a step call may change anything.
type Mode string

// The step modes.
const (
	ModeNormal Mode = "normal"
	ModeDryRun Mode = "dry-run"
)

// Request is what the engine sends a plugin for one node. Config may hold
// secrets resolved from the environment: it is never persisted or logged.
// In JSON (a call offered to an agent, internal/cluster) the fields left
// at their zero value are left out: a reader gets them back as zero.
type Request struct {
	RunID   string `json:",omitempty"`
	NodeID  string
	Kind    graphs.Kind
	Plugin  string // the graph's plugin name ("exec", "pacs-vendor" …)
	Attempt int    // 1 for the first attempt
	// Config is the node's `with`, placeholders resolved.
	Config map[string]any `json:",omitempty"`
	// Inputs are the outputs of the node's dependencies, by node id.
	Inputs map[string]map[string]string `json:",omitempty"`
	Mode   Mode
	// WorkDir is the graph file's folder, the default working directory.
	WorkDir string `json:",omitempty"`
	// Drill is true in a drill run: an exercise, to be restored into the
	// exercise environment.
	Drill bool `json:",omitempty"`
	// RestorePoint is the point to restore from, chosen by the engine
	// (scanned clean, or picked by an operator) for a node that declares
	// restore_points; nil otherwise.
	RestorePoint *RestorePoint `json:",omitempty"`
}

// RestorePoint is a backup a node's data is restored from.
type RestorePoint struct {
	ID   string
	Time time.Time
	// Path is the point's folder, readable by the engine's host.
	Path string
}

// EventKind is the kind of a Event streamed during Restore.
type EventKind string

// The event kinds.
const (
	EventLog      EventKind = "log"
	EventProgress EventKind = "progress"
	EventOutput   EventKind = "output"
)

// Event is one event a plugin streams while restoring a node.
type Event struct {
	Kind    EventKind
	Level   string  // log: "debug", "info", "warn" or "error"
	Message string  // log line, or progress text
	Percent float64 // progress, 0 to 100
	Key     string  // output key
	Value   string  // output value
}

// Status is the outcome of a Restore or Verify call.
type Status string

// The step outcomes.
const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Waiting   Status = "waiting" // a manual gate waits for approval
)

// Result is the final answer of Restore or Verify.
type Result struct {
	Status  Status
	Message string
	Outputs map[string]string
}

// CheckResult says whether a node is already in its restored state.
type CheckResult struct {
	Restored bool
	Message  string
	// Outputs are the node's outputs as it stands, when Restored.
	Outputs map[string]string
}

// ConfigField documents one field of a plugin's `with` configuration.
type ConfigField struct {
	Name        string
	Type        string
	Required    bool
	Description string
}

// PluginInfo is what a plugin says of itself.
type PluginInfo struct {
	Name        string
	Version     string
	Kinds       []graphs.Kind // empty: every kind
	Fields      []ConfigField
	Description string
	// ListsRestorePoints: the plugin implements ListRestorePoints.
	ListsRestorePoints bool
}

// Host runs steps in plugin processes (see package engine/host). It is
// safe for concurrent calls. A plugin that crashes fails its calls in flight
// with an error holding the crash text and is started again on the next call.
// Every call honours ctx's deadline and cancellation. Errors are about the
// call itself (plugin missing, refused, crashed, timed out); a step that ran
// and failed is a Result with Status Failed.
type Host interface {
	Describe(ctx context.Context, plugin string) (PluginInfo, error)
	// Validate returns the problems of req's config; no side effects.
	Validate(ctx context.Context, req Request) ([]string, error)
	// Check tells whether the node is already restored; no side effects.
	Check(ctx context.Context, req Request) (CheckResult, error)
	// Restore runs the restore step; onEvent receives streamed events in
	// order, from the calling goroutine or another, never concurrently.
	Restore(ctx context.Context, req Request, onEvent func(Event)) (Result, error)
	// Verify runs the health check after a restore.
	Verify(ctx context.Context, req Request) (Result, error)
	// Close ends every plugin process and its process group.
	Close() error
}

// ListedPoint is a restore point a plugin lists for a node whose graph says
// `restore_points: {from: plugin}`. Exactly one of Path and NeedsStaging is
// set.
type ListedPoint struct {
	ID   string
	Time time.Time // UTC
	Size int64     // bytes; 0: unknown
	// Path is the point's folder as the plugin names it (the engine checks
	// that it lies under the node's roots).
	Path string
	// NeedsStaging: the point must be staged (StageRestorePoint) before it
	// can be read.
	NeedsStaging bool
}

// PointLister is implemented by hosts whose plugins may list a node's
// restore points (ListRestorePoints) and stage them for reading. The engine
// asks it only for nodes with `restore_points: {from: plugin}`, whose
// plugin says it lists points (PluginInfo.ListsRestorePoints). Answers are
// checked for the contract's limits (ids, times, duplicates, count) before
// they are returned; an answer that breaks them is an error naming the
// plugin and the node.
type PointLister interface {
	ListRestorePoints(ctx context.Context, req Request) ([]ListedPoint, error)
	// StageRestorePoint makes point id readable and returns its folder.
	StageRestorePoint(ctx context.Context, req Request, id string) (string, error)
	// ReleaseRestorePoint undoes StageRestorePoint.
	ReleaseRestorePoint(ctx context.Context, req Request, id, path string) error
}
