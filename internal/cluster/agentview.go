package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// AgentView is what a run's crisis cell sees of the agents on an etcd
// state (`reprise status`, the crisis room): for each zone of the run's
// nodes, its live agents and its steps waiting for one. It is read, never
// written: a reader of this build judges an agent's protocol against its
// own (ProtocolVersion), as a coordinator of this build would.
type AgentView struct {
	// Protocol is the ProtocolVersion the agents are judged against.
	Protocol int `json:"protocol"`
	// Zones are the zones of the run's nodes, by name; the zone ""
	// (steps for any agent: nodes without a zone under --agents-only)
	// only when steps wait in it.
	Zones []ZoneAgents `json:"zones"`
	// Elsewhere are the live agents of zones without a node in the run.
	Elsewhere []AgentState `json:"elsewhere,omitempty"`
	// Work says the run's work in etcd was read (a run recorded
	// running): Waiting and InFlight are counted; without it they are 0.
	Work bool `json:"work"`
	// Coordinators are the coordinators in the election of the run's
	// graph, the leader first (Leads), then the standbys in the order
	// they would take over; none when no coordinator runs the graph.
	Coordinators []Coordinator `json:"coordinators"`
}

// Coordinator is a coordinator in a graph's election.
type Coordinator struct {
	LeaderInfo
	// Leads: it leads the graph's run; else it stands by.
	Leads bool `json:"leads"`
}

// ZoneAgents is one zone of a run as the agents serve it.
type ZoneAgents struct {
	Zone string `json:"zone"`
	// Nodes counts the run's nodes of the zone.
	Nodes int `json:"nodes"`
	// Agents are the zone's live agents, by name; Ready counts those a
	// coordinator of this build offers steps to (same protocol, not
	// draining).
	Agents []AgentState `json:"agents"`
	Ready  int          `json:"ready"`
	// Waiting counts the zone's steps written for its agents that no
	// agent has taken: with Ready 0 they wait for an agent to start.
	Waiting int `json:"waiting"`
	// Alert, with steps waiting and no ready agent, says so and what to
	// do ("" otherwise).
	Alert string `json:"alert,omitempty"`
}

// AgentState is a live agent and what it runs of the run.
type AgentState struct {
	Name     string    `json:"name"`
	Zone     string    `json:"zone"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Slots    int       `json:"slots"`
	Started  time.Time `json:"started"`
	Protocol int       `json:"protocol"`
	Draining bool      `json:"draining,omitempty"`
	// Incompatible says why a coordinator of this build offers it no
	// step ("" when it speaks this build's protocol).
	Incompatible string `json:"incompatible,omitempty"`
	// InFlight counts the run's running steps offered to or claimed by
	// the agent.
	InFlight int `json:"in_flight"`
}

// claimReadBatch bounds the claims read in one transaction (etcd's
// --max-txn-ops is 128 by default).
const claimReadBatch = 100

// ReadAgentView reads the live agents and, for a run recorded running,
// the run's work (offer batches with their values, the node keys without)
// in one transaction, then the values of the run's claims, if any (steps
// agents claimed themselves: written unclaimed when no agent had a free
// slot). The zones are
// those of m's nodes in m's graph; a step counts as waiting or in flight
// only while m has its node running.
func ReadAgentView(ctx context.Context, cli *clientv3.Client, k Keys, m *view.Model) (AgentView, error) {
	run := m.Run.ID
	work := m.Run.Status == state.RunRunning
	ops := []clientv3.Op{clientv3.OpGet(k.Agents(), clientv3.WithPrefix()),
		// The election's candidates, oldest first: the first leads.
		clientv3.OpGet(k.Leader(m.Run.GraphName)+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))}
	if work {
		ops = append(ops,
			clientv3.OpGet(k.Run(run)+"o/", clientv3.WithPrefix()),
			clientv3.OpGet(k.Run(run)+"n/", clientv3.WithPrefix(), clientv3.WithKeysOnly()))
	}
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return AgentView{}, fmt.Errorf("read the agents under %s and the work of run %s: %w", k.Agents(), run, err)
	}
	running := map[string]bool{}
	for i := range m.Nodes {
		if m.Nodes[i].State == state.NodeRunning {
			running[m.Nodes[i].ID] = true
		}
	}
	v := AgentView{Protocol: ProtocolVersion, Work: work, Coordinators: []Coordinator{}}
	for i, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var li LeaderInfo
		if json.Unmarshal(kv.Value, &li) != nil {
			li = LeaderInfo{Name: "(unreadable: key " + string(kv.Key) + ")"}
		}
		v.Coordinators = append(v.Coordinators, Coordinator{LeaderInfo: li, Leads: i == 0})
	}
	var agents []*AgentState
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var ai AgentInfo
		if err := json.Unmarshal(kv.Value, &ai); err != nil {
			ai = AgentInfo{Name: string(kv.Key[len(k.Agents()):]), Protocol: -1}
		}
		a := &AgentState{Name: ai.Name, Zone: ai.Zone, Host: ai.Host, PID: ai.PID, Slots: ai.Slots, Started: ai.Started,
			Protocol: ai.Protocol, Draining: ai.Draining, Incompatible: ai.Incompatibility()}
		agents = append(agents, a)
	}
	waiting := map[string]int{} // zone → steps waiting
	if work {
		byName := map[string]*AgentState{}
		for _, a := range agents {
			byName[a.Name] = a
		}
		offered := map[string]bool{}
		for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
			p, ok := k.parse(string(kv.Key))
			if !ok || p.kind != "offer" {
				continue
			}
			b, err := decodeOffer(kv.Value)
			if err != nil {
				continue // another version's batch: nothing to count
			}
			for _, it := range b.Items {
				offered[it.Req.NodeID] = true
				if a := byName[p.agent]; a != nil && running[it.Req.NodeID] {
					a.InFlight++
				}
			}
		}
		items, claimed := map[string]bool{}, map[string]bool{}
		var claims []clientv3.Op
		for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
			p, ok := k.parse(string(kv.Key))
			if !ok || !running[p.node] {
				continue
			}
			switch p.kind {
			case "item":
				items[p.node] = true
			case "claim":
				claimed[p.node] = true
				claims = append(claims, clientv3.OpGet(string(kv.Key), clientv3.WithRev(resp.Header.Revision)))
			}
		}
		// A claim names its agent in its value (a keys-only range carries
		// neither value nor lease): the run's claims, at most the agents'
		// slots, are read at the same revision.
		for len(claims) > 0 {
			n := min(len(claims), claimReadBatch)
			cr, err := cli.Txn(ctx).Then(claims[:n]...).Commit()
			if err != nil {
				return AgentView{}, fmt.Errorf("read the claims of run %s: %w", run, err)
			}
			for _, r := range cr.Responses {
				for _, kv := range r.GetResponseRange().Kvs {
					var cl Claim
					if json.Unmarshal(kv.Value, &cl) == nil {
						if a := byName[cl.Agent]; a != nil {
							a.InFlight++
						}
					}
				}
			}
			claims = claims[n:]
		}
		for node := range items {
			if !claimed[node] && !offered[node] {
				waiting[zoneOf(m, node)]++
			}
		}
	}
	zones := map[string]*ZoneAgents{}
	zone := func(z string) *ZoneAgents {
		if zones[z] == nil {
			zones[z] = &ZoneAgents{Zone: z, Agents: []AgentState{}}
		}
		return zones[z]
	}
	for i := range m.Nodes {
		if z := zoneOf(m, m.Nodes[i].ID); z != "" {
			zone(z).Nodes++
		}
	}
	for z, n := range waiting {
		zone(z).Waiting = n
	}
	for _, a := range agents {
		ready := a.Incompatible == "" && !a.Draining
		if za := zones[a.Zone]; za != nil {
			za.Agents = append(za.Agents, *a)
			if ready {
				za.Ready++
			}
		} else {
			v.Elsewhere = append(v.Elsewhere, *a)
		}
		if za := zones[""]; za != nil && ready && a.Zone != "" {
			za.Ready++ // a step of no zone goes to any agent
		}
	}
	for _, za := range zones {
		za.Alert = za.alert()
		v.Zones = append(v.Zones, *za)
	}
	sort.Slice(v.Zones, func(i, j int) bool { return v.Zones[i].Zone < v.Zones[j].Zone })
	for _, za := range v.Zones {
		sort.Slice(za.Agents, func(i, j int) bool { return za.Agents[i].Name < za.Agents[j].Name })
	}
	sort.Slice(v.Elsewhere, func(i, j int) bool {
		if v.Elsewhere[i].Zone != v.Elsewhere[j].Zone {
			return v.Elsewhere[i].Zone < v.Elsewhere[j].Zone
		}
		return v.Elsewhere[i].Name < v.Elsewhere[j].Name
	})
	return v, nil
}

// zoneOf is node's zone in m's graph ("" without a graph or a zone).
func zoneOf(m *view.Model, node string) string {
	if m.Graph == nil {
		return ""
	}
	if n, ok := m.Graph.Node(node); ok {
		return n.Zone
	}
	return ""
}

// Summary says how the zone's agents stand, for a zone without Alert:
// how many, how many take steps, its steps waiting for a free slot.
func (za ZoneAgents) Summary() string {
	var parts []string
	switch len(za.Agents) {
	case 0:
		parts = append(parts, "no agent registered")
	case 1:
		parts = append(parts, "1 agent")
	default:
		parts = append(parts, fmt.Sprintf("%d agents", len(za.Agents)))
	}
	if len(za.Agents) > 0 && za.Ready < len(za.Agents) {
		parts = append(parts, fmt.Sprintf("%d taking steps", za.Ready))
	}
	if za.Waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d step(s) waiting for a free slot", za.Waiting))
	}
	return fmt.Sprintf("%s (%d nodes)", strings.Join(parts, ", "), za.Nodes)
}

// alert says that za's steps wait with no agent to take them, and what to
// do; "" when none waits or an agent can take them.
func (za *ZoneAgents) alert() string {
	if za.Waiting == 0 || za.Ready > 0 {
		return ""
	}
	steps := fmt.Sprintf("%d steps waiting", za.Waiting)
	if za.Waiting == 1 {
		steps = "1 step waiting"
	}
	start := fmt.Sprintf("start `reprise agent --zone %s` on a machine of the zone", za.Zone)
	if za.Zone == "" {
		start = "start `reprise agent` of this build on any machine (these steps have no zone)"
	}
	var incompatible, draining []string
	for _, a := range za.Agents {
		switch {
		case a.Incompatible != "":
			incompatible = append(incompatible, fmt.Sprintf("%s speaks %s", a.Name, protocolName(a.Protocol)))
		case a.Draining:
			draining = append(draining, a.Name)
		}
	}
	why := "no agent of this protocol registered"
	if len(draining) > 0 {
		why = fmt.Sprintf("its agents are stopping (draining: %s)", strings.Join(draining, ", "))
	}
	if len(incompatible) > 0 {
		why += fmt.Sprintf("; %s, this build %d: upgrade it", strings.Join(incompatible, ", "), ProtocolVersion)
	}
	return fmt.Sprintf("%s, %s — %s", steps, why, start)
}
