// Package graphs holds reprise's graph file format (version 1, YAML or JSON):
// parsing, validation, the dependency model and its analyses (order, waves,
// effective criticality, critical path) and renderings (DOT, Mermaid).
//
// It imports nothing of reprise's own: the engine, the CLI and tools build on it.
package graphs

import "time"

// Kind is what a node stands for in the information system. Kinds are stored
// and written as they read ("application").
type Kind string

// The node kinds of graph file version 1.
const (
	KindInfrastructure Kind = "infrastructure"
	KindApplication    Kind = "application"
	KindInterface      Kind = "interface"
	KindData           Kind = "data"
)

// Kinds lists every valid Kind in a stable order (for messages and reports).
var Kinds = []Kind{KindInfrastructure, KindApplication, KindInterface, KindData}

// Criticality says how urgent a node is. A node's effective criticality is the
// highest of its own and that of everything that depends on it.
type Criticality string

// The criticality levels, from most to least urgent.
const (
	CriticalityVital  Criticality = "vital"
	CriticalityHigh   Criticality = "high"
	CriticalityNormal Criticality = "normal"
	CriticalityLow    Criticality = "low"
)

// Criticalities lists every valid Criticality from most to least urgent.
var Criticalities = []Criticality{CriticalityVital, CriticalityHigh, CriticalityNormal, CriticalityLow}

// Rank orders criticalities: vital is 3, high 2, normal 1, low 0 (and an
// empty or unknown value ranks as normal).
func (c Criticality) Rank() int {
	switch c {
	case CriticalityVital:
		return 3
	case CriticalityHigh:
		return 2
	case CriticalityLow:
		return 0
	default:
		return 1
	}
}

// BuiltinPlugins are the plugins served by the reprise binary itself; a
// graph uses them without a `plugins` entry.
var BuiltinPlugins = []string{"exec", "http", "manual", "noop"}

// IsBuiltin reports whether name is a built-in plugin.
func IsBuiltin(name string) bool {
	for _, b := range BuiltinPlugins {
		if b == name {
			return true
		}
	}
	return false
}

// Position is where a value starts in its source file (1-based; zero when
// unknown, as for JSON input decoded without positions).
type Position struct {
	Line   int
	Column int
}

// Graph is a parsed graph file. It is immutable once returned by Load or
// Parse and safe for concurrent readers.
type Graph struct {
	Version  int
	Name     string
	Plugins  map[string]PluginRef
	Defaults Defaults
	// Limits bound each node's outputs (zero fields: the defaults).
	Limits Limits
	Nodes  []*Node
	// Zones are the trust zones, most trusted first (nil: none declared).
	Zones []Zone
	// Scanners are the restore-point scanners, in file order.
	Scanners []Scanner
	// Incident is when the attack was detected (nil: not declared);
	// deadlines (RTO) count from it, else from the run's start.
	Incident *Incident
	// Notify are the targets told of gates, failures, deadlines and the
	// run's end (nil: none).
	Notify []Notify

	// File is the path the graph was read from ("" for in-memory input);
	// Dir is its folder, the default working directory of exec steps.
	File string
	Dir  string
	// Source is the raw file content, kept so that a run can snapshot it
	// (for a graph read from its rendition, ParseRendition: the rendition).
	Source []byte
	// sourceHash, when set, is the hash of the file a rendition was made
	// from (ParseRendition): Hash returns it.
	sourceHash string

	index map[string]int
	deps  [][]int // effective dependencies by node index, cached by Parse
}

// PluginRef declares a plugin binary that is not built in.
type PluginRef struct {
	Path   string // relative paths resolve from the graph file's folder
	SHA256 string // lowercase hex; when set the binary is refused if it differs
	// MaxParallel caps concurrent steps through this plugin (0: no cap).
	MaxParallel int
	// StartTimeout bounds the plugin's start-up (process, handshake,
	// session), counted apart from any node's timeout (0: the host's
	// default, 10s).
	StartTimeout time.Duration
	Pos          Position
}

// Defaults apply to every node that does not set its own value.
type Defaults struct {
	Timeout    time.Duration // zero: 30m
	Retries    int
	RetryDelay time.Duration // zero: 30s
	// RTO is the recovery time objective by effective criticality: a node
	// without its own rto must be back this long after the incident.
	RTO map[Criticality]time.Duration
	// Approvals is how many distinct approvers a manual gate of that
	// effective criticality needs when it does not say (absent: 1).
	Approvals map[Criticality]int
}

// Default values used when neither the node nor the graph's defaults say.
const (
	DefaultTimeout    = 30 * time.Minute
	DefaultRetryDelay = 30 * time.Second
)

// Node is one restore step of the information system.
type Node struct {
	ID          string
	Kind        Kind
	Title       string
	Plugin      string
	DependsOn   []string // as written
	Between     []string // for interfaces: exactly two ends, both implied dependencies
	Criticality Criticality
	Estimate    time.Duration
	Timeout     time.Duration // zero: the graph default
	Retries     *int          // nil: the graph default
	With        map[string]any

	// Zone is the node's trust zone ("" when the graph declares none).
	Zone string
	// RestorePoints are the points the node's data may be restored from
	// (nil: none; the step restores what it knows).
	RestorePoints *RestorePoints
	// Scan names the scanners run on each restore point, in order.
	Scan []string
	// Wipes names the machines the node reinstalls or reimages.
	Wipes []string
	// Evidence marks a node that preserves evidence (a disk image, a memory
	// capture, a log export) of the machines in Preserves.
	Evidence  bool
	Preserves []string
	// After lists the evidence nodes that must finish before this node
	// because it wipes what they preserve. Parse fills it; it is part of
	// the node's effective dependencies (Deps).
	After []string
	// Metadata: what a crisis cell needs to know about the node. Editing
	// any of these never resets a node (DiffGraphs lists them as Metadata).
	Owner     string        // who answers for the service
	Contact   string        // how to reach them (phone, mail)
	Runbook   string        // a URL or a path to the procedure
	RTO       time.Duration // zero: the graph default for its criticality
	Approvals int           // manual gates: distinct approvers needed (0: the graph default, else 1)

	Pos     Position // where the node's mapping starts
	KindPos Position // where its kind's value is written (errors about the kind point there)
}

// NodeApprovals is how many distinct approvers the manual gate n needs,
// given its effective criticality: its own approvals, else the graph's
// default for that criticality, else 1.
func (g *Graph) NodeApprovals(n *Node, eff Criticality) int {
	if n.Approvals > 0 {
		return n.Approvals
	}
	if k := g.Defaults.Approvals[eff]; k > 0 {
		return k
	}
	return 1
}

// NodeRTO is the recovery time objective of n given its effective
// criticality: its own rto, else the graph's default (zero: none).
func (g *Graph) NodeRTO(n *Node, eff Criticality) time.Duration {
	if n.RTO > 0 {
		return n.RTO
	}
	return g.Defaults.RTO[eff]
}

// Deps returns the node's effective dependencies: DependsOn, then the
// Between ends, then After (evidence to take before a wipe), without
// duplicates, in that order.
func (n *Node) Deps() []string {
	out := make([]string, 0, len(n.DependsOn)+len(n.Between)+len(n.After))
	seen := make(map[string]bool, len(n.DependsOn)+len(n.Between)+len(n.After))
	for _, list := range [][]string{n.DependsOn, n.Between, n.After} {
		for _, d := range list {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}
