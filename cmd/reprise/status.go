package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/crisis"
)

func newStatusCmd() *cobra.Command {
	var opts statusOptions
	var statePath *string
	c := &cobra.Command{
		Use:   "status [RUN]",
		Short: "Show where a run stands (default: the latest unfinished run, else the newest)",
		Long: `Show a run's progress: the root causes first (each failed node with its full
last error, then the nodes it blocks, grouped by failed ancestor), counts and
% done by kind and by effective criticality, running nodes with their elapsed
time, gates waiting for approval, nodes marked done by hand, and an ETA from
the estimates and the measured times (the same ETA as the live bar of run).
Works from another terminal while the run goes on (through the running
process's control socket, STATE.sock).

A run recorded as running whose process is gone (crash, kill, reboot) shows
as interrupted, with when it was last seen; its nodes' elapsed time stops
then. Nodes outside a --target run are skipped, never done.

--node ID shows one node: its state, attempts, last error, who approved or
marked it, and its outputs (secrets are never stored: they show redacted).

A drill (run --drill) is said so first, with its clean-up record or the
command that records it.

--json prints the Summary object: {"run", "status" ("interrupted" for a run
whose process is gone), "graph", "live", "last_seen", "drill" (true for a
drill), "cleanup" ({"by", "at", "note"} once recorded), "total", "done"
(succeeded), "percent", "counts": {state: n}, "by_kind" and "by_criticality":
[{"key", "total", "done", "percent", "counts"}], "running": [{"id",
"attempt", "started", "elapsed_seconds"}], "root_causes": [{"id",
"criticality", "attempts", "last_error", "blocks": [id]}], "blocked_other":
[id], "failures": [{"id", "state", "attempts", "last_error", "blocked_by"}],
"waiting": [id], "eta_seconds", "nodes": [{"id", "state", "attempts", "kind",
"criticality", "started", "ended", "last_error", "approved_by", "marked_by",
"mark_reason"}]}. With --node, one node: {"id", "state", "attempts", "kind",
"criticality", "declared_criticality", "title", "started", "ended",
"elapsed_seconds", "last_error", "approved_by", "approval_comment",
"approved_at", "marked_by", "mark_reason", "blocked_by", "history",
"outputs"}.

Beside the Summary, --json carries the crisis cell's view: "deadlines_from",
"deadlines": [{"node", "criticality", "rto" (ns), "target", "projected",
"actual", "status": met|missed|on-track|at-risk|late}], "deadline_counts",
"gates": [{"node", "title", "needed", "approvers": [{"by", "at", "comment"}],
"owner", "contact", "runbook"}], "contacts": {node: {"owner", "contact",
"runbook"}}.

On an etcd state, status also says which coordinator leads the run's graph
and which stand by (a run recorded running that none leads: NONE, and how it
goes on), and lists the agents of each zone of the run's nodes: name, host, slots, steps of this run in flight on it, draining,
incompatible (another protocol version: offered no step); a zone whose steps
wait with no agent of this build's protocol to take them is shown first of
its line, NO AGENT, with the command to start one. --json carries them as
"agents": {"protocol", "work" (the run's work in etcd was read: a run
recorded running), "zones": [{"zone", "nodes", "agents": [{"name", "zone",
"host", "pid", "slots", "started", "protocol", "draining", "incompatible",
"in_flight"}], "ready", "waiting", "alert"}], "elsewhere": [agents of zones
without a node in the run], "coordinators": [{"name", "host", "pid", "since",
"command", "leads"}], the leader first} (or "agents_error" when they could
not be read). Nothing of it on a state file.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.StatePath, opts.RunID = *statePath, argOr(args, "")
			st, err := runStatus(c.Context(), opts)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			switch {
			case st.Node != nil && opts.JSON:
				return writeJSON(out, nodeDetail(st.Model, st.Node))
			case st.Node != nil:
				printNode(out, st.Model, st.Node)
				if st.Crisis != nil {
					printNodeCrisis(out, *st.Crisis, st.Node.ID)
				}
				return nil
			case opts.JSON:
				return writeJSON(out, newStatusOut(st))
			}
			printStatus(out, st.Model)
			printCrisis(out, st.Model, *st.Crisis)
			printAgents(out, st)
			return nil
		},
	}
	statePath = addStateFlag(c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print the summary as JSON")
	c.Flags().StringVar(&opts.Node, "node", "", "show one node: attempts, last error, decisions, outputs")
	return c
}

// statusOptions are the options of `reprise status [RUN]`.
type statusOptions struct {
	// StatePath is the state file (--state).
	StatePath string
	// RunID is the run ("": the latest unfinished, else the newest).
	RunID string
	// Node asks for one node (--node).
	Node string
	// JSON asks for JSON (the command prints it).
	JSON bool
}

// runStatusResult is where a run stands: its view model, the crisis cell's view
// and, with opts.Node, that node. It reads the state file, or the control
// socket of the process running it.
type runStatusResult struct {
	Model *view.Model
	// Crisis is the crisis cell's view; with Node, nil when it could not
	// be built (status --node then shows no deadline and no contact).
	Crisis *crisis.View
	// Node is opts.Node's view.
	Node *view.Node
	// Agents, on an etcd state, are the agents of the run's zones
	// (status_agents.go); AgentsErr says why they could not be read.
	Agents    *cluster.AgentView
	AgentsErr error
}

// runStatus loads where run opts.RunID stands (the latest unfinished run,
// else the newest, without one): the view model and the crisis cell's
// view, or with opts.Node that node, whose mistyped id gets a "did you
// mean".
func runStatus(ctx context.Context, opts statusOptions) (runStatusResult, error) {
	r, live, closeFn, err := openReader(opts.StatePath)
	if err != nil {
		return runStatusResult{}, err
	}
	defer closeFn()
	run, err := pickRun(r, opts.RunID)
	if err != nil {
		return runStatusResult{}, err
	}
	m, err := view.Load(r, run.ID, view.LoadOptions{Now: time.Now(), Live: live == run.ID})
	if err != nil {
		return runStatusResult{}, err
	}
	if opts.Node != "" {
		n := m.Node(opts.Node)
		if n == nil {
			ids := make([]string, len(m.Nodes))
			for i := range m.Nodes {
				ids[i] = m.Nodes[i].ID
			}
			hint := fmt.Sprintf("list them with `reprise status %s --json`", run.ID)
			if c := graphs.Suggest(opts.Node, ids); c != "" {
				hint = fmt.Sprintf("did you mean %q?", c)
			}
			return runStatusResult{}, fmt.Errorf("run %s has no node %q (%s)", run.ID, opts.Node, hint)
		}
		res := runStatusResult{Model: m, Node: n}
		if cv, err := crisis.Build(m, nil); err == nil {
			res.Crisis = &cv
		}
		return res, nil
	}
	cv, err := crisis.Build(m, r.Journal)
	if err != nil {
		return runStatusResult{}, err
	}
	res := runStatusResult{Model: m, Crisis: &cv}
	res.Agents, res.AgentsErr = readAgents(ctx, r, m)
	return res, nil
}

// argOr is args[0], or def without arguments.
func argOr(args []string, def string) string {
	if len(args) > 0 {
		return args[0]
	}
	return def
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printStatus writes where a run stands for people: the root causes come
// right after the headline.
func printStatus(w io.Writer, m *view.Model) {
	s := m.Summary()
	printDrill(w, s)
	fmt.Fprintf(w, "run %s  graph %s  status %s\n", s.Run, s.Graph, runStatusText(m))
	eta := ""
	if m.ETA > 0 {
		eta = "  eta " + view.FormatDuration(m.ETA)
	}
	fmt.Fprintf(w, "progress  %d/%d done (%.1f%%)%s\n", s.Done, s.Total, s.Percent, eta)
	var parts []string
	for _, st := range state.NodeStates {
		if n := s.Counts[st]; n > 0 {
			part := fmt.Sprintf("%s %d", st, n)
			if st == state.NodeSkipped && len(m.Run.Options.Targets) > 0 {
				part += " (outside the target)"
			}
			parts = append(parts, part)
		}
	}
	fmt.Fprintf(w, "nodes     %s\n", strings.Join(parts, ", "))
	printRootCauses(w, m)
	printBreakdown(w, "by kind", s.ByKind)
	printBreakdown(w, "by criticality", s.ByCriticality)
	if len(s.Running) > 0 {
		if m.Live {
			fmt.Fprintln(w, "running:")
		} else {
			fmt.Fprintln(w, "running when the process went away:")
		}
		for _, r := range s.Running {
			fmt.Fprintf(w, "  %-28s attempt %d, %s\n", r.ID, r.Attempt, view.FormatDuration(time.Duration(r.ElapsedSeconds*float64(time.Second))))
		}
	}
	if len(s.Waiting) > 0 {
		fmt.Fprintln(w, "waiting for approval:")
		for _, id := range s.Waiting {
			if suspiciousPoint(m, id) != "" {
				fmt.Fprintf(w, "  %-28s a suspicious restore point: see below\n", id)
				continue
			}
			fmt.Fprintf(w, "  %-28s reprise approve %s %s --by NAME\n", id, s.Run, id)
		}
	}
	printZones(w, m)
	printRestorePoints(w, m)
	var marked []string
	for i := range m.Nodes {
		if n := &m.Nodes[i]; n.MarkedBy != "" {
			marked = append(marked, fmt.Sprintf("  %-28s %s\n", n.ID, markedText(n.MarkedBy, n.MarkReason)))
		}
	}
	if len(marked) > 0 {
		fmt.Fprintln(w, "marked done by hand:")
		fmt.Fprint(w, strings.Join(marked, ""))
	}
}

// runStatusText is the run's status with what a reader needs beside it:
// in progress, or when an interrupted run was last seen.
func runStatusText(m *view.Model) string {
	switch {
	case m.Live:
		return string(m.Status) + " (in progress)"
	case m.Interrupted():
		return fmt.Sprintf("%s (its process is gone; last seen %s, %s ago; resume with `reprise resume %s`)",
			m.Status, m.LastSeen.Local().Format(time.DateTime), view.FormatDuration(m.Now.Sub(m.LastSeen)), m.Run.ID)
	}
	return string(m.Status)
}

// markedText says who marked a node done and why, the same words in
// status, log and report.
func markedText(by, reason string) string {
	return fmt.Sprintf("marked done by %s: %s", by, reason)
}

// printRootCauses writes each failed node with its full last error, most
// critical first, then the blocked nodes grouped by the failed node that
// stops them.
func printRootCauses(w io.Writer, m *view.Model) {
	if len(m.Failures) == 0 && len(m.BlockedOther) == 0 {
		return
	}
	fmt.Fprintln(w, "root causes:")
	for _, f := range m.Failures {
		fmt.Fprintf(w, "  %s  failed after %d attempt(s) (%s)\n", f.ID, f.Attempts, f.Effective)
		for _, line := range strings.Split(strings.TrimRight(f.Error, "\n"), "\n") {
			fmt.Fprintf(w, "      %s\n", line)
		}
	}
	type group struct {
		by    string
		nodes []string
	}
	var groups []group
	for _, f := range m.Failures {
		if len(f.Blocks) > 0 {
			groups = append(groups, group{f.ID, f.Blocks})
		}
	}
	sort.SliceStable(groups, func(a, b int) bool { return len(groups[a].nodes) > len(groups[b].nodes) })
	if len(groups) > 0 || len(m.BlockedOther) > 0 {
		fmt.Fprintln(w, "blocked:")
	}
	for _, g := range groups {
		fmt.Fprintf(w, "  %d node(s) blocked by %s: %s\n", len(g.nodes), g.by, joinMax(g.nodes, 8))
	}
	if n := len(m.BlockedOther); n > 0 {
		fmt.Fprintf(w, "  %d node(s) blocked without a failed ancestor: %s\n", n, joinMax(m.BlockedOther, 8))
	}
}

// joinMax joins at most n ids, saying how many more there are.
func joinMax(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s … and %d more", strings.Join(ids[:n], ", "), len(ids)-n)
}

// printDrill says first that a drill is a drill, and where its clean-up
// stands.
func printDrill(w io.Writer, s view.Summary) {
	if !s.Drill {
		return
	}
	fmt.Fprintln(w, "DRILL — an exercise on the real plan")
	if c := s.Cleanup; c != nil {
		fmt.Fprintf(w, "clean-up: recorded by %s at %s: %s\n", c.By, c.At.Local().Format(time.DateTime), c.Note)
		return
	}
	when := ""
	if s.Live {
		when = "once it is over: "
	}
	fmt.Fprintf(w, "clean-up: not recorded yet (%sreprise cleanup %s --by NAME --note TEXT)\n", when, s.Run)
}

func printBreakdown(w io.Writer, title string, bs []view.SummaryBreakdown) {
	if len(bs) == 0 {
		return
	}
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		parts = append(parts, fmt.Sprintf("%s %d/%d (%.0f%%)", b.Key, b.Done, b.Total, b.Percent))
	}
	fmt.Fprintf(w, "%-15s %s\n", title, strings.Join(parts, ", "))
}
