// Package report turns one run of reprise into a report for a crisis cell:
// a self-contained HTML page (summary, Gantt timeline, the graph coloured by
// state, failures, operator decisions, the journal's verification), Markdown
// for e-mail, and JSON for tools (schema in SCHEMA.md).
//
// A Report is built once from a run's records (Build) and is then read-only:
// rendering it several times, or from several goroutines, is safe. Nothing in
// this package touches the network, the state file or the clock beyond what
// Build is given.
package report

import (
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// SchemaVersion names the JSON layout written by (*Report).JSON.
const SchemaVersion = "reprise.report/v1"

// Report is everything a report shows about one run. Its exported fields are
// the JSON schema (SCHEMA.md): add fields, don't rename them.
type Report struct {
	Schema    string     `json:"schema"`
	Generated time.Time  `json:"generated"`
	Run       Run        `json:"run"`
	Summary   Summary    `json:"summary"`
	Nodes     []Node     `json:"nodes"`
	Failures  []Failure  `json:"failures"`
	Decisions []Decision `json:"decisions"`
	Journal   Journal    `json:"journal"`
	// Clean recovery: the trust zones and their certification, every
	// restore point's verdict, and the point each node was restored from
	// with the data lost (the RPO achieved) counted back from Incident.
	Zones    []Zone    `json:"zones,omitempty"`
	Verdicts []Verdict `json:"verdicts,omitempty"`
	RPO      []RPO     `json:"rpo,omitempty"`
	Incident time.Time `json:"incident,omitzero"`
	// Deadlines: each node with an RTO, its target, projected and actual
	// end and where it stands (the same as `reprise status`), counted
	// from DeadlinesFrom; DeadlineCounts tallies them by status.
	Deadlines      []Deadline     `json:"deadlines,omitempty"`
	DeadlinesFrom  time.Time      `json:"deadlines_from,omitzero"`
	DeadlineCounts map[string]int `json:"deadline_counts,omitempty"`

	loc       *time.Location // times are shown in this zone (HTML, Markdown)
	waitUntil time.Time      // gates waiting for approval are drawn to here
	active    time.Duration  // Run.ActiveSeconds
	journal   []state.Entry  // for the timeline of actions
	graph     *graphs.Graph
}

// Run describes the run a report is about.
type Run struct {
	ID        string `json:"id"`
	Graph     string `json:"graph"`
	GraphFile string `json:"graph_file,omitempty"`
	GraphHash string `json:"graph_hash,omitempty"`
	// Status is the run's status as it truly is: "interrupted" for a run
	// recorded as running whose process is gone (LastSeen says when it was
	// last seen).
	Status   string    `json:"status"`
	Live     bool      `json:"live"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Start and End bound every attempt of the run (the timeline's span);
	// End is the generation time for attempts still going on.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// SpanSeconds is End − Start; ActiveSeconds the wall time during which
	// at least one attempt was going on, across resumes (what the run
	// took); ETASeconds the estimated time left (0: nothing left or
	// unknown).
	SpanSeconds   float64 `json:"span_seconds"`
	ActiveSeconds float64 `json:"active_seconds"`
	ETASeconds    float64 `json:"eta_seconds"`
	// Drill is true for an exercise on the real plan, not a restore of
	// production.
	Drill bool `json:"drill"`
	// Cleanup is the record of a drill's clean-up; nil (JSON null) while it
	// is not recorded, and for a run that is not a drill.
	Cleanup *Cleanup `json:"cleanup"`
}

// Cleanup records who cleaned up what a drill set up, when, and what was
// done.
type Cleanup struct {
	By   string    `json:"by"`
	At   time.Time `json:"at,omitzero"`
	Note string    `json:"note"`
}

// Summary counts nodes by state, by kind and by effective criticality.
type Summary struct {
	Total int `json:"total"`
	// States holds a count for every node state, zero included.
	States map[string]int `json:"states"`
	// Restored counts nodes that are back: succeeded. Skipped nodes
	// (outside a --target run) are not.
	Restored int `json:"restored"`
	// Percent is Restored / Total × 100, 0 when Total is 0 (the same
	// number as status's "percent").
	Percent       float64     `json:"percent"`
	ByKind        []Breakdown `json:"by_kind"`
	ByCriticality []Breakdown `json:"by_criticality"`
	// Vital is the share of vital services back: nodes whose effective
	// criticality is vital, as in ByCriticality.
	Vital    Share  `json:"vital"`
	Headline string `json:"headline"`
}

// Breakdown counts the nodes of one kind or one criticality.
type Breakdown struct {
	Name     string         `json:"name"`
	Total    int            `json:"total"`
	Restored int            `json:"restored"`
	Percent  float64        `json:"percent"` // Restored / Total * 100, 0 when Total is 0
	States   map[string]int `json:"states"`
}

// Share is a part of a whole, with its percentage (0 when Total is 0).
type Share struct {
	Restored int     `json:"restored"`
	Total    int     `json:"total"`
	Percent  float64 `json:"percent"`
}

// Node is one node of the run as the report shows it.
type Node struct {
	ID          string    `json:"id"`
	Title       string    `json:"title,omitempty"`
	Kind        string    `json:"kind"`
	Criticality string    `json:"criticality"` // as declared ("normal" when unset)
	Effective   string    `json:"effective"`   // effective criticality
	Wave        int       `json:"wave"`        // 0 for nodes without dependencies
	Deps        []string  `json:"deps,omitempty"`
	State       string    `json:"state"`
	Attempts    []Attempt `json:"attempts,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Ended       time.Time `json:"ended,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// BlockedBy lists the failed nodes that stop this blocked node: its
	// failed ancestors reached through nodes that did not fail.
	BlockedBy []string `json:"blocked_by,omitempty"`
	// MarkedBy and MarkReason say who marked the node done by hand, and why.
	MarkedBy   string `json:"marked_by,omitempty"`
	MarkReason string `json:"mark_reason,omitempty"`
	// Outputs are the node's outputs as stored (secrets never are).
	Outputs map[string]string `json:"outputs,omitempty"`
	// Zone is the node's trust zone; Owner, Contact and Runbook who
	// answers for it, how to reach them and the procedure (as the graph
	// says; metadata only).
	Zone    string `json:"zone,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Contact string `json:"contact,omitempty"`
	Runbook string `json:"runbook,omitempty"`
}

// Attempt is one try of a node's restore step.
type Attempt struct {
	N       int       `json:"n"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`    // zero while it runs
	Result  string    `json:"result"`            // succeeded, failed, waiting, running, …
	Error   string    `json:"error,omitempty"`   // why an attempt did not succeed
	Message string    `json:"message,omitempty"` // what a successful attempt said

	end time.Time // Ended, or where an attempt going on is drawn to
}

// Failure is a failed node with what it blocks.
type Failure struct {
	NodeID    string    `json:"node"`
	Title     string    `json:"title,omitempty"`
	Kind      string    `json:"kind"`
	Effective string    `json:"effective"`
	Attempts  int       `json:"attempts"`
	At        time.Time `json:"at,omitzero"`
	LastError string    `json:"last_error"`
	Blocks    []string  `json:"blocks,omitempty"` // descendants it blocks
}

// The decision types.
const (
	DecisionApproval = "approval" // a manual gate was approved
	DecisionOverride = "override" // a node was marked done by hand
	DecisionOther    = "action"   // any other journaled operator action (retry, resume …)
)

// Decision is an operator's act on the run: who, when, on what, and why.
type Decision struct {
	Type   string    `json:"type"`
	NodeID string    `json:"node,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Seq    uint64    `json:"seq,omitempty"` // journal entry, when known

	cleanup bool // the record of a drill's clean-up, made after the run
}

// Journal is the verification result of the run's hash-chained journal.
type Journal struct {
	Entries  int    `json:"entries"`
	OK       bool   `json:"ok"`
	FirstBad uint64 `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	Head     string `json:"head,omitempty"` // hash of the last entry
	// HeadSeq is the last entry's sequence number: with Head, the anchor
	// that `reprise log --verify --anchor` can check a journal against.
	HeadSeq uint64 `json:"head_seq,omitempty"`
	// Broken is the banner shown on top of every format when the chain
	// does not verify: "journal broken at entry N: …".
	Broken string `json:"broken,omitempty"`
}
