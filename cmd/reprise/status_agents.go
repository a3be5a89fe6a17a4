package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// readAgents reads, on an etcd state, the agents of the run's zones and
// its steps waiting for one (one transaction, cluster.ReadAgentView); on
// a state file, nil.
func readAgents(ctx context.Context, r reader, m *view.Model) (*cluster.AgentView, error) {
	st, ok := r.(*etcdstate.Store)
	if !ok {
		return nil, nil
	}
	u, err := etcdconn.Parse(st.Path())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := cluster.ReadAgentView(ctx, st.Client(), cluster.NewKeys(u.Root()), m)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// printAgents writes, on an etcd state, each zone of the run with its
// live agents, and a zone whose steps wait with no agent to take them
// first of its line, in capitals.
func printAgents(w io.Writer, st runStatusResult) {
	if st.AgentsErr != nil {
		fmt.Fprintf(w, "agents: could not be read: %v\n", st.AgentsErr)
		return
	}
	v := st.Agents
	if v == nil {
		return
	}
	printCoordinators(w, st.Model.Run, v.Coordinators)
	fmt.Fprintf(w, "agents (judged against protocol %d):\n", v.Protocol)
	if len(v.Zones) == 0 {
		fmt.Fprintln(w, "  no node of this run has a zone: its steps run on the coordinator unless --agents-only")
	}
	for _, z := range v.Zones {
		name := "zone " + z.Zone
		if z.Zone == "" {
			name = "no zone (any agent)"
		}
		switch {
		case z.Alert != "":
			fmt.Fprintf(w, "  NO AGENT  %s: %s\n", name, z.Alert)
		default:
			fmt.Fprintf(w, "  %s: %s\n", name, z.Summary())
		}
		for _, a := range z.Agents {
			fmt.Fprintf(w, "    %s\n", agentLine(v, a))
		}
	}
	if len(v.Elsewhere) > 0 {
		parts := make([]string, len(v.Elsewhere))
		for i, a := range v.Elsewhere {
			parts[i] = fmt.Sprintf("%s (zone %s)", a.Name, a.Zone)
		}
		fmt.Fprintf(w, "  agents of zones without a node in this run: %s\n", strings.Join(parts, ", "))
	}
}

// agentLine is one agent: name, host, slots, what it runs, and whether a
// coordinator of this build offers it steps.
func agentLine(v *cluster.AgentView, a cluster.AgentState) string {
	s := fmt.Sprintf("%-20s host %s  slots %d", a.Name, a.Host, a.Slots)
	if v.Work {
		s += fmt.Sprintf("  in flight %d", a.InFlight)
	}
	switch {
	case a.Incompatible != "":
		s += "  INCOMPATIBLE: " + strings.TrimPrefix(a.Incompatible, "incompatible: ")
	case a.Draining:
		s += "  draining (stopping: takes no new step)"
	}
	return s
}

// printCoordinators writes who leads the run's graph and who stands by; a
// run recorded running or interrupted that no coordinator leads says how
// it goes on.
func printCoordinators(w io.Writer, run state.Run, cs []cluster.Coordinator) {
	if len(cs) == 0 {
		switch run.Status {
		case state.RunRunning:
			fmt.Fprintf(w, "coordinator: NONE leads graph %s: the run goes on once one takes it (reprise resume %s, with --standby on a second machine)\n", run.GraphName, run.ID)
		case state.RunInterrupted:
			// Stopped cleanly (a signal, its operator's authority
			// withdrawn): nothing goes on with it until a resume.
			fmt.Fprintf(w, "coordinator: NONE leads graph %s: the run was stopped, its finished steps kept; it goes on once one takes it (reprise resume %s)\n", run.GraphName, run.ID)
		}
		return
	}
	var standby []string
	for _, c := range cs {
		who := fmt.Sprintf("%s (host %s, pid %d, since %s)", c.Name, c.Host, c.PID, c.Since.Local().Format("2006-01-02 15:04:05"))
		if c.Leads {
			fmt.Fprintf(w, "coordinator: %s\n", who)
			continue
		}
		standby = append(standby, who)
	}
	if len(standby) > 0 {
		fmt.Fprintf(w, "  standing by: %s\n", strings.Join(standby, "; "))
	} else {
		fmt.Fprintln(w, "  no standby: if it dies, the run waits for a resume")
	}
}
