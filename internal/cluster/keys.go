package cluster

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/step"
)

// Keys builds the etcd keys of one reprise prefix. Root is the prefix's
// root, with its slashes: "/PREFIX/".
type Keys struct{ Root string }

// NewKeys returns the keys under root, given as "/PREFIX/" or "PREFIX".
func NewKeys(root string) Keys {
	root = "/" + strings.Trim(root, "/") + "/"
	if root == "//" {
		root = "/"
	}
	return Keys{Root: root}
}

// Agents is the prefix of the agents' registrations.
func (k Keys) Agents() string { return k.Root + "agents/" }

// Agent is the registration key of agent name.
func (k Keys) Agent(name string) string { return k.Agents() + name }

// Runs is the prefix of every run's work.
func (k Keys) Runs() string { return k.Root + "work/runs/" }

// Run is the prefix of run's work.
func (k Keys) Run(run string) string { return k.Runs() + run + "/" }

// Node is the prefix of node's work in run.
func (k Keys) Node(run, node string) string { return k.Run(run) + "n/" + node + "/" }

// Item is the key of node's call waiting for or run by an agent.
func (k Keys) Item(run, node string) string { return k.Node(run, node) + "item" }

// Claim is the key of the claim on node's call.
func (k Keys) Claim(run, node string) string { return k.Node(run, node) + "claim" }

// Result is the key of node's result.
func (k Keys) Result(run, node string) string { return k.Node(run, node) + "result" }

// Event is the key of batch seq of the events of claim rev of node.
func (k Keys) Event(run, node string, rev int64, seq int) string {
	return fmt.Sprintf("%sev/%016d-%08d", k.Node(run, node), rev, seq)
}

// Offer is the key of offer batch id: calls a coordinator claimed at once
// for agent, under the agent's lease (offer.go).
func (k Keys) Offer(run, agent, id string) string { return k.Run(run) + "o/" + agent + "/" + id }

// Batch is the key of result batch id: the results an agent wrote at once
// for the calls of one offer batch.
func (k Keys) Batch(run, id string) string { return k.Run(run) + "b/" + id }

// Withdraw is the key that withdraws offered call from agent, under the
// agent's lease.
func (k Keys) Withdraw(run, agent, call string) string { return k.Run(run) + "x/" + agent + "/" + call }

// Refused is the key of a late result refused: node's, claim rev.
func (k Keys) Refused(run, node string, rev int64) string {
	return fmt.Sprintf("%srefused/%s-%d", k.Run(run), node, rev)
}

// Writes is the prefix of the dispatchers' write markers (writer.commit):
// under it, each writer's own prefix.
func (k Keys) Writes() string { return k.Root + "work/writes/" }

// Graph is the prefix of the chunks of the graph of hash hash.
func (k Keys) Graph(hash string) string { return k.Root + "work/graphs/" + hash + "/" }

// Leader is the election prefix of the coordinators of graph name.
func (k Keys) Leader(graph string) string { return k.Root + "leader/" + graph }

// Commands is the prefix of operators' commands.
func (k Keys) Commands() string { return k.Root + "commands/" }

// parsed is a key under Runs, taken apart.
type parsed struct {
	run, node string
	kind      string // "item", "claim", "result", "ev", "refused", "offer", "batch", "withdraw"
	rev       int64  // ev: the claim's revision
	agent     string // offer, withdraw: the agent
	id        string // offer, batch: the batch's id; withdraw: the call
}

// parse takes a key under Runs apart; ok is false for any other key.
func (k Keys) parse(key string) (p parsed, ok bool) {
	rest, ok := strings.CutPrefix(key, k.Runs())
	if !ok {
		return p, false
	}
	run, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return p, false
	}
	p.run = run
	if ref, ok := strings.CutPrefix(rest, "refused/"); ok {
		i := strings.LastIndexByte(ref, '-')
		if i < 0 {
			return p, false
		}
		p.node, p.kind = ref[:i], "refused"
		p.rev, _ = strconv.ParseInt(ref[i+1:], 10, 64)
		return p, true
	}
	for _, kind := range [...]string{"o/", "x/"} {
		if r, ok := strings.CutPrefix(rest, kind); ok {
			agent, id, ok := strings.Cut(r, "/")
			if !ok || agent == "" || id == "" {
				return p, false
			}
			p.kind, p.agent, p.id = map[string]string{"o/": "offer", "x/": "withdraw"}[kind], agent, id
			return p, true
		}
	}
	if id, ok := strings.CutPrefix(rest, "b/"); ok {
		p.kind, p.id = "batch", id
		return p, ok && id != ""
	}
	rest, ok = strings.CutPrefix(rest, "n/")
	if !ok {
		return p, false
	}
	// Node ids hold no slash (graphs/FORMAT.md), so the last part is the kind.
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return p, false
	}
	p.node, rest = rest[:i], rest[i+1:]
	switch {
	case rest == "item" || rest == "claim" || rest == "result":
		p.kind = rest
	case strings.HasPrefix(rest, "ev/"):
		p.kind = "ev"
		num, _, _ := strings.Cut(strings.TrimPrefix(rest, "ev/"), "-")
		p.rev, _ = strconv.ParseInt(num, 10, 64)
	default:
		return p, false
	}
	return p, true
}

// The operations of a work item: the step.Host calls.
const (
	opRestore = "restore"
	opCheck   = "check"
	opVerify  = "verify"
)

// The wire format: Item, Claim, Result and OfferBatch below, the result
// batches (zvalue.go) and the keys above are what coordinators and agents
// write for each other. Bump ProtocolVersion (protocol.go) with any change
// to them that one side of an earlier version would misread.

// Item is a call of the coordinator for an agent: a node's request, without
// its resolved configuration (the agent resolves it, secrets included,
// with its own environment).
type Item struct {
	Call string `json:"call"` // unique per call
	// Protocol is the coordinator's ProtocolVersion (in an offer batch,
	// the batch's): an agent of another version does not take the item.
	Protocol  int          `json:"protocol,omitempty"`
	Op        string       `json:"op"`
	Zone      string       `json:"zone,omitempty"`       // "": any agent
	Graph     string       `json:"graph,omitempty"`      // the graph's hash (its chunks under Keys.Graph)
	GraphFile string       `json:"graph_file,omitempty"` // parsed under this name: relative paths resolve as on the coordinator
	Req       step.Request `json:"req"`                  // Config always nil
	Timeout   Duration     `json:"timeout,omitempty"`
	// CheckFirst asks Check before Restore: the call was left running by a
	// lost agent (LostAgent), or handed back by a stopping one.
	CheckFirst bool   `json:"check_first,omitempty"`
	LostAgent  string `json:"lost_agent,omitempty"`
	By         string `json:"by,omitempty"` // the coordinator
	// ClaimedBy is set by the claim's transaction: a claimed item is never
	// claimed again, even once its claim went with a lost agent's lease,
	// until the coordinator puts it back (with CheckFirst).
	ClaimedBy string `json:"claimed_by,omitempty"`
}

// Duration is a time.Duration written as text in JSON.
type Duration time.Duration

// MarshalText writes d as "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Claim is an agent's claim on a call.
type Claim struct {
	Agent string `json:"agent"`
	Call  string `json:"call"`
	// By is the coordinator that claimed the call for the agent (an
	// offer, see offer.go); "" when the agent claimed it.
	By string `json:"by,omitempty"`
}

// Result is an agent's answer to a call, fenced by its claim's revision.
type Result struct {
	Call     string            `json:"call"`
	ClaimRev int64             `json:"claim_rev"`
	Agent    string            `json:"agent"`
	Op       string            `json:"op"`
	Status   step.Status       `json:"status,omitempty"`
	Message  string            `json:"message,omitempty"`
	Outputs  map[string]string `json:"outputs,omitempty"`
	Restored bool              `json:"restored,omitempty"` // check
	// Error is the call's error (plugin missing, pin mismatch, crashed …);
	// Permanent says a retry cannot mend it.
	Error     string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	// Checked says the step was left running by a lost agent and Check
	// found it restored: it was not restored again.
	Checked bool `json:"checked,omitempty"`
	// Node is the call's node (results of an offer batch travel together).
	Node string `json:"node,omitempty"`
	// HandedBack says the agent gives an offered call back instead of a
	// result: it stops (never started: no Check needed) or was stopped
	// while the call ran (CheckFirst). The coordinator offers it again.
	HandedBack bool `json:"handed_back,omitempty"`
	CheckFirst bool `json:"check_first,omitempty"`
	// Events are the call's last events, not streamed yet.
	Events []wireEvent `json:"events,omitempty"`
}

// OfferBatch is the value of an offer key: calls a coordinator claimed for
// one agent in one transaction. The fields its items share are written
// once, in the batch (an item's are then empty): a third of the bytes.
type OfferBatch struct {
	By        string `json:"by"`
	Protocol  int    `json:"protocol"` // the coordinator's ProtocolVersion
	Graph     string `json:"graph,omitempty"`
	GraphFile string `json:"graph_file,omitempty"`
	Run       string `json:"run,omitempty"`
	WorkDir   string `json:"work_dir,omitempty"`
	Items     []Item `json:"items"`
}

// expand gives each item the batch's shared fields.
func (b *OfferBatch) expand() {
	for i := range b.Items {
		it := &b.Items[i]
		if it.Graph == "" {
			it.Graph = b.Graph
		}
		if it.GraphFile == "" {
			it.GraphFile = b.GraphFile
		}
		if it.By == "" {
			it.By = b.By
		}
		if it.Protocol == 0 {
			it.Protocol = b.Protocol
		}
		if it.Req.RunID == "" {
			it.Req.RunID = b.Run
		}
		if it.Req.WorkDir == "" {
			it.Req.WorkDir = b.WorkDir
		}
	}
}

// compact is it without the fields an offer batch holds once.
func (it Item) compact() Item {
	it.Graph, it.GraphFile, it.By, it.Req.RunID, it.Req.WorkDir, it.Protocol = "", "", "", "", "", 0
	return it
}

// AgentInfo is an agent's registration.
type AgentInfo struct {
	Name    string    `json:"name"`
	Zone    string    `json:"zone"`
	Slots   int       `json:"slots"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Draining says the agent is stopping: it takes no new step, and
	// coordinators offer it none.
	Draining bool `json:"draining,omitempty"`
	// Protocol is the agent's ProtocolVersion (0: a build from before
	// protocol versions): a coordinator of another version offers it no
	// step.
	Protocol int `json:"protocol"`
}
