package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// EditPlan is what resuming a run with an edited graph does, computed before
// anything changes (as `terraform plan` does): resume --graph prints it,
// with --dry-run only prints it, and applies and journals it otherwise.
//
// No edit re-runs a completed restore unless the operator asks: a node done
// whose step changed (plugin, with, depends_on, between) is Kept, unless
// RerunChanged was asked, and a metadata edit (title, estimate,
// criticality, timeout, retries, kind) changes nothing at all.
type EditPlan struct {
	RunID string `json:"run"`
	Graph string `json:"graph"` // the edited file
	// Added are new nodes (they join pending), Removed nodes leave the run
	// with their records, Kept are done nodes whose step changed and that
	// stay done, Rerun done nodes whose step changed and that run again
	// (--rerun-changed), Updated nodes not done whose step changed (they
	// take the new definition), Metadata nodes where only fields that do not
	// change the step were edited.
	Added    []EditItem `json:"added"`
	Removed  []EditItem `json:"removed"`
	Kept     []EditItem `json:"changed_kept"`
	Rerun    []EditItem `json:"rerun"`
	Updated  []EditItem `json:"updated"`
	Metadata []EditItem `json:"metadata"`
	// Plugins are the plugin declarations added, removed or re-pinned.
	Plugins []string `json:"plugins"`
}

// EditItem is one node of an EditPlan: its state before the edit ("" for a
// new node) and why it is listed.
type EditItem struct {
	ID     string          `json:"id"`
	State  state.NodeState `json:"state,omitempty"`
	Reason string          `json:"reason"`
}

// Empty reports whether the edit changes nothing.
func (p EditPlan) Empty() bool {
	return len(p.Added)+len(p.Removed)+len(p.Kept)+len(p.Rerun)+len(p.Updated)+len(p.Metadata)+len(p.Plugins) == 0
}

// Summary says the plan in one line.
func (p EditPlan) Summary() string {
	s := fmt.Sprintf("graph changed: %d added, %d removed, %d changed since done and kept, %d to run again, %d changed not done, %d metadata only",
		len(p.Added), len(p.Removed), len(p.Kept), len(p.Rerun), len(p.Updated), len(p.Metadata))
	if len(p.Plugins) > 0 {
		// Nodes already done with the old declaration stay done.
		s += "; plugin declarations changed: " + strings.Join(p.Plugins, ", ")
	}
	return s
}

// PlanEdit computes what resuming run (whose stored graph is old and node
// records recs) with edited does. It reads nothing and changes nothing.
func PlanEdit(run state.Run, old, edited *graphs.Graph, recs []state.NodeRecord, rerunChanged bool) EditPlan {
	diff := graphs.DiffGraphs(old, edited)
	byID := make(map[string]state.NodeRecord, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	p := EditPlan{RunID: run.ID, Graph: absPath(edited.File), Plugins: diff.Plugins,
		Added: []EditItem{}, Removed: []EditItem{}, Kept: []EditItem{}, Rerun: []EditItem{}, Updated: []EditItem{}, Metadata: []EditItem{}}
	if p.Plugins == nil {
		p.Plugins = []string{}
	}
	for _, id := range diff.Added {
		p.Added = append(p.Added, EditItem{ID: id, Reason: "new node: joins the run, pending"})
	}
	for _, id := range diff.Removed {
		p.Removed = append(p.Removed, EditItem{ID: id, State: byID[id].State, Reason: "not in the edited graph: leaves the run with its record"})
	}
	for _, id := range diff.Changed {
		st := byID[id].State
		fields := strings.Join(diff.Fields[id], ", ")
		switch {
		case st == state.NodeSucceeded && rerunChanged:
			p.Rerun = append(p.Rerun, EditItem{ID: id, State: st, Reason: fields + " changed since done: runs again (--rerun-changed)"})
		case st == state.NodeSucceeded:
			p.Kept = append(p.Kept, EditItem{ID: id, State: st, Reason: fields + " changed since done: kept done (run it again with --rerun-changed, or `reprise retry " + run.ID + " " + id + "`)"})
		default:
			p.Updated = append(p.Updated, EditItem{ID: id, State: st, Reason: fields + " changed: not done, takes the new definition"})
		}
	}
	for _, id := range diff.Metadata {
		p.Metadata = append(p.Metadata, EditItem{ID: id, State: byID[id].State, Reason: strings.Join(diff.Fields[id], ", ") + " changed: nothing runs again"})
	}
	return p
}

// journalData is the plan as a graph-changed entry's data.
func (p EditPlan) journalData(hash string) map[string]string {
	ids := func(items []EditItem) string {
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = it.ID
		}
		return strings.Join(out, ",")
	}
	changed := append(append(append([]EditItem(nil), p.Kept...), p.Rerun...), p.Updated...)
	return map[string]string{
		"file":     p.Graph,
		"hash":     hash,
		"added":    ids(p.Added),
		"removed":  ids(p.Removed),
		"changed":  sortedIDs(changed),
		"kept":     ids(p.Kept),
		"rerun":    ids(p.Rerun),
		"updated":  ids(p.Updated),
		"metadata": ids(p.Metadata),
		"plugins":  strings.Join(p.Plugins, ","),
	}
}

func sortedIDs(items []EditItem) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// planText writes the plan for people: one line per node, with its reason.
func (p EditPlan) planText() string {
	var b strings.Builder
	section := func(sign, title string, items []EditItem) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s (%d):\n", title, len(items))
		for _, it := range items {
			was := ""
			if it.State != "" {
				was = " [" + string(it.State) + "]"
			}
			fmt.Fprintf(&b, "  %s %s%s: %s\n", sign, it.ID, was, it.Reason)
		}
	}
	section("+", "added", p.Added)
	section("-", "removed", p.Removed)
	section("~", "changed since done, kept", p.Kept)
	section("!", "to run again", p.Rerun)
	section("~", "changed, not done (new definition)", p.Updated)
	section("=", "metadata only (nothing runs again)", p.Metadata)
	if len(p.Plugins) > 0 {
		fmt.Fprintf(&b, "plugin declarations changed: %s (nodes done with the old one stay done)\n", strings.Join(p.Plugins, ", "))
	}
	return b.String()
}

// Text is the plan as printed by resume --graph: a line per node with its
// reason, then the summary.
func (p EditPlan) Text() string {
	if p.Empty() {
		return "graph unchanged: nothing to add, remove or run again\n"
	}
	return p.planText() + p.Summary() + "\n"
}
