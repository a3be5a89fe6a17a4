package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// nodeStatus is `status RUN --node ID --json`.
type nodeStatus struct {
	ID              string             `json:"id"`
	Title           string             `json:"title,omitempty"`
	State           state.NodeState    `json:"state"`
	Attempts        int                `json:"attempts"`
	Kind            graphs.Kind        `json:"kind,omitempty"`
	Criticality     graphs.Criticality `json:"criticality"` // effective
	Declared        graphs.Criticality `json:"declared_criticality"`
	Started         time.Time          `json:"started,omitzero"`
	Ended           time.Time          `json:"ended,omitzero"`
	ElapsedSeconds  float64            `json:"elapsed_seconds,omitempty"`
	LastError       string             `json:"last_error,omitempty"`
	ApprovedBy      string             `json:"approved_by,omitempty"`
	ApprovalComment string             `json:"approval_comment,omitempty"`
	ApprovedAt      time.Time          `json:"approved_at,omitzero"`
	MarkedBy        string             `json:"marked_by,omitempty"`
	MarkReason      string             `json:"mark_reason,omitempty"`
	BlockedBy       []string           `json:"blocked_by,omitempty"`
	History         []state.Attempt    `json:"history"`
	Outputs         map[string]string  `json:"outputs"`
}

func nodeDetail(m *view.Model, n *view.Node) nodeStatus {
	d := nodeStatus{ID: n.ID, Title: n.Title, State: n.State, Attempts: n.Attempts, Kind: n.Kind,
		Criticality: n.Effective, Declared: n.Criticality, Started: n.Started, Ended: n.Ended,
		ElapsedSeconds: math.Round(n.Elapsed.Seconds()*10) / 10, LastError: n.LastError,
		ApprovedBy: n.ApprovedBy, ApprovalComment: n.ApprovalComment, ApprovedAt: n.ApprovedAt,
		MarkedBy: n.MarkedBy, MarkReason: n.MarkReason, BlockedBy: n.BlockedBy,
		History: n.History, Outputs: n.Outputs}
	if d.History == nil {
		d.History = []state.Attempt{}
	}
	if d.Outputs == nil {
		d.Outputs = map[string]string{}
	}
	return d
}

// printNode writes one node for people: what it is, where it stands, its
// attempts, the decisions on it and its outputs.
func printNode(w io.Writer, m *view.Model, n *view.Node) {
	title := ""
	if n.Title != "" {
		title = "  " + n.Title
	}
	fmt.Fprintf(w, "node %s%s\n", n.ID, title)
	fmt.Fprintf(w, "run       %s  status %s\n", m.Run.ID, runStatusText(m))
	kind := string(n.Kind)
	if kind == "" {
		kind = "unknown"
	}
	fmt.Fprintf(w, "state     %s after %d attempt(s)\n", n.State, n.Attempts)
	fmt.Fprintf(w, "kind      %s, criticality %s (declared %s)\n", kind, n.Effective, n.Criticality)
	if n.State == state.NodeRunning {
		fmt.Fprintf(w, "elapsed   %s\n", view.FormatDuration(n.Elapsed))
	}
	if len(n.BlockedBy) > 0 {
		fmt.Fprintf(w, "blocked   by %s\n", strings.Join(n.BlockedBy, ", "))
	}
	if n.ApprovedBy != "" {
		fmt.Fprintf(w, "approved  by %s at %s: %s\n", n.ApprovedBy, n.ApprovedAt.Local().Format(time.DateTime), n.ApprovalComment)
	}
	if n.MarkedBy != "" {
		fmt.Fprintf(w, "override  %s\n", markedText(n.MarkedBy, n.MarkReason))
	}
	if n.LastError != "" {
		fmt.Fprintln(w, "last error:")
		for _, line := range strings.Split(strings.TrimRight(n.LastError, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if len(n.History) > 0 {
		fmt.Fprintln(w, "attempts:")
		for _, a := range n.History {
			end, res := "…", string(a.Result)
			if !a.Ended.IsZero() {
				end = a.Ended.Local().Format(time.TimeOnly)
			}
			if res == "" {
				res = "running"
			}
			line := fmt.Sprintf("  #%d %s → %s %s", a.N, a.Started.Local().Format(time.DateTime), end, res)
			if a.Error != "" {
				line += ": " + oneLine(a.Error)
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(n.Outputs) > 0 {
		fmt.Fprintln(w, "outputs:")
		keys := make([]string, 0, len(n.Outputs))
		for k := range n.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s = %s\n", k, n.Outputs[k])
		}
	}
}
