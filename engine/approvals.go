package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Approver is one approval given to a gate.
type Approver struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// GateApprovals returns the approvals given to gate nodeID of run runID
// since it last started waiting (a retry or a reset starts afresh), read
// from the journal: the journal is the record of who approved.
func GateApprovals(journal func(runID string, afterSeq uint64, fn func(state.Entry) error) error, runID, nodeID string) ([]Approver, error) {
	var out []Approver
	err := journal(runID, 0, func(e state.Entry) error {
		if e.NodeID != nodeID {
			return nil
		}
		switch e.Type {
		case state.EntryStarted, state.EntryReset:
			out = out[:0]
		case state.EntryApprovalGiven:
			out = append(out, Approver{By: e.By, At: e.Time, Comment: e.Message})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("approvals of node %q of run %q: %w", nodeID, runID, err)
	}
	return out, nil
}

// GateProgress is where a gate stands: how many distinct approvers it
// needs and who approved so far.
type GateProgress struct {
	Needed    int        `json:"needed"`
	Approvers []Approver `json:"approvers"`
}

// gateDecision checks approval by `by` against those given before: it
// refuses the same approver twice (names compared without case or
// surrounding spaces) and says whether this approval opens the gate.
func gateDecision(runID, nodeID, by string, prior []Approver, needed int) (open bool, err error) {
	key := strings.ToLower(strings.TrimSpace(by))
	names := make([]string, 0, len(prior))
	for _, p := range prior {
		if strings.ToLower(strings.TrimSpace(p.By)) == key {
			return false, fmt.Errorf("approve node %q of run %q: %s already approved this gate (%d of %d approvals so far: %s); it needs %d distinct approvers, another one must approve: %w",
				nodeID, runID, by, len(prior), needed, strings.Join(approverNames(prior), ", "), needed, state.ErrAlreadyApproved)
		}
		names = append(names, p.By)
	}
	return len(prior)+1 >= needed, nil
}

func approverNames(as []Approver) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.By
	}
	return out
}

// approvalEntry builds the journal entry of an approval: a partial one
// (EntryApprovalGiven) while the gate needs more approvers, else the
// EntryApproved that opens it, naming every approver.
func approvalEntry(now time.Time, nodeID, by, comment string, prior []Approver, needed int, open bool) (*state.Entry, string) {
	given := len(prior) + 1
	data := map[string]string{"given": strconv.Itoa(given), "needed": strconv.Itoa(needed)}
	all := strings.Join(append(approverNames(prior), by), ", ")
	if needed > 1 {
		data["approvers"] = all
	}
	t := state.EntryApprovalGiven
	if open {
		t = state.EntryApproved
	}
	return &state.Entry{Time: now, Type: t, NodeID: nodeID, By: by, Message: comment, Data: data}, all
}

// neededApprovals is how many approvers gate i of g needs.
func neededApprovals(g *graphs.Graph, a *graphs.Analysis, i int) int {
	return g.NodeApprovals(g.Nodes[i], a.Effective[i])
}
