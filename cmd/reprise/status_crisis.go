package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/crisis"
	"github.com/reprise-si/reprise/internal/deadline"
)

// statusOut is what status --json prints: the Summary with the crisis
// cell's view beside it (deadlines, gates, contacts) and, on an etcd
// state, the agents (status_agents.go).
type statusOut struct {
	view.Summary
	crisis.View
	Agents      *cluster.AgentView `json:"agents,omitempty"`
	AgentsError string             `json:"agents_error,omitempty"`
}

func newStatusOut(st runStatusResult) statusOut {
	o := statusOut{Summary: st.Model.Summary(), View: *st.Crisis, Agents: st.Agents}
	if st.AgentsErr != nil {
		o.AgentsError = st.AgentsErr.Error()
	}
	return o
}

// printCrisis prints deadlines at risk or late, gates that need several
// approvers, and who to call about failed nodes and gates.
func printCrisis(w io.Writer, m *view.Model, v crisis.View) {
	if len(v.Deadlines) > 0 {
		var parts []string
		for _, st := range []deadline.Status{deadline.Late, deadline.AtRisk, deadline.OnTrack, deadline.Missed, deadline.Met} {
			if n := v.DeadlineCount[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(string(st), "-", " ")))
			}
		}
		fmt.Fprintf(w, "deadlines (from %s): %s\n", v.DeadlinesFrom.Local().Format("2006-01-02 15:04"), strings.Join(parts, ", "))
		shown := 0
		for _, d := range v.Deadlines {
			if d.Status != deadline.Late && d.Status != deadline.AtRisk && d.Status != deadline.Missed {
				continue
			}
			if shown++; shown > 20 {
				fmt.Fprintln(w, "  … (status --json lists them all)")
				break
			}
			when := "done " + d.Actual.Local().Format("01-02 15:04")
			if d.Actual.IsZero() {
				when = "projected " + d.Projected.Local().Format("01-02 15:04")
			}
			fmt.Fprintf(w, "  %-8s %-28s target %s (rto %s), %s%s\n", strings.ReplaceAll(string(d.Status), "-", " "), d.Node,
				d.Target.Local().Format("01-02 15:04"), graphs.FormatDuration(d.RTO), when, contactSuffix(v, d.Node))
		}
	}
	for _, g := range v.Gates {
		if g.Needed < 2 {
			continue
		}
		names := make([]string, len(g.Approvers))
		for i, a := range g.Approvers {
			names[i] = a.By
		}
		so := "none yet"
		if len(names) > 0 {
			so = strings.Join(names, ", ")
		}
		fmt.Fprintf(w, "gate %s needs %d distinct approvers: %d given (%s)\n", g.Node, g.Needed, len(g.Approvers), so)
	}
	var who []string
	for _, f := range m.Failures {
		if c, ok := v.Contacts[f.ID]; ok {
			who = append(who, fmt.Sprintf("  %-28s %s", f.ID, contactLine(c)))
		}
	}
	for _, g := range v.Gates {
		if g.Contact != (crisis.Contact{}) {
			who = append(who, fmt.Sprintf("  %-28s %s", g.Node, contactLine(g.Contact)))
		}
	}
	if len(who) > 0 {
		fmt.Fprintln(w, "who to call:")
		fmt.Fprintln(w, strings.Join(who, "\n"))
	}
}

func contactSuffix(v crisis.View, id string) string {
	if c, ok := v.Contacts[id]; ok && c.Owner != "" {
		return " — " + c.Owner
	}
	return ""
}

func contactLine(c crisis.Contact) string {
	var parts []string
	if c.Owner != "" {
		parts = append(parts, "owner "+c.Owner)
	}
	if c.Contact != "" {
		parts = append(parts, "contact "+c.Contact)
	}
	if c.Runbook != "" {
		parts = append(parts, "runbook "+c.Runbook)
	}
	return strings.Join(parts, " · ")
}

// printNodeCrisis adds a node's owner, contact, runbook and deadline to
// status --node.
func printNodeCrisis(w io.Writer, v crisis.View, id string) {
	if c, ok := v.Contacts[id]; ok {
		fmt.Fprintf(w, "who        %s\n", contactLine(c))
	}
	if d, ok := v.Deadline(id); ok {
		when := "projected " + d.Projected.Local().Format("2006-01-02 15:04")
		if !d.Actual.IsZero() {
			when = "done " + d.Actual.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(w, "deadline   %s: target %s (rto %s), %s\n", strings.ReplaceAll(string(d.Status), "-", " "),
			d.Target.Local().Format("2006-01-02 15:04"), graphs.FormatDuration(d.RTO), when)
	}
}
