package main

import (
	"fmt"
	"strings"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
)

// gateNote says where a gate stands after an approval: "" when it opened,
// else how many approvals it has and that another approver must approve.
func gateNote(path, runID, node string) string {
	r, _, closeFn, err := openReader(path)
	if err != nil {
		return ""
	}
	defer closeFn()
	recs, err := r.Nodes(runID)
	if err != nil {
		return ""
	}
	for _, rec := range recs {
		if rec.ID != node || rec.State != state.NodeWaiting {
			continue
		}
		given, err := engine.GateApprovals(r.Journal, runID, node)
		if err != nil || len(given) == 0 {
			return ""
		}
		names := make([]string, len(given))
		for i, g := range given {
			names[i] = g.By
		}
		return fmt.Sprintf("gate %s still waits: approved so far by %s; it needs another, distinct approver",
			node, strings.Join(names, ", "))
	}
	return ""
}
