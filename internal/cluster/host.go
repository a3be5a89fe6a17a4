package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// Journal entry types the dispatcher writes.
const (
	// EntryAgentLost: a step was left running by an agent whose lease
	// expired; it goes to another agent of its zone, which asks Check first.
	EntryAgentLost state.EntryType = "agent-lost"
	// EntryResultRefused: a late result from an agent whose claim had been
	// taken over; not applied.
	EntryResultRefused state.EntryType = "result-refused"
)

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Client *clientv3.Client
	Keys   Keys
	// Graph is the run's graph (engine.Options.NewHost gives it).
	Graph *graphs.Graph
	// Local runs the nodes that do not go to agents; nil with AgentsOnly.
	Local step.Host
	// AgentsOnly sends every node to agents: a node without a zone to any
	// agent, a zoned one to its zone's agents, even before one registered.
	AgentsOnly bool
	// Journal appends an entry to run's journal (agent lost, result
	// refused).
	Journal func(ctx context.Context, runID string, e *state.Entry) error
	Logger  *zap.Logger
	// Name is the coordinator's name in the items it writes.
	Name string
	// MaxTxnOps is the members' --max-txn-ops, when lower than etcd's
	// default (0: the default).
	MaxTxnOps int
	// Prestart: the run's state is on Client's cluster (an etcdstate
	// store), so that the engine may commit the offers of the steps it
	// starts with their running records (prestart.go).
	Prestart bool
}

// Dispatcher is the coordinator's step.Host: the calls of a node whose zone
// has agents go to them through etcd, the others to the local host.
type Dispatcher struct {
	o DispatcherOptions
	// loseAnswer, in tests, makes the answer of a lost agent's put-back
	// that committed look lost (lost.go).
	loseAnswer func() bool
	// hash is the graph's hash, computed once: hashing the source is
	// linear in the graph's size, too dear once per call.
	hash string
	// zonesOf lists the zones of the nodes of each plugin.
	zonesOf map[string][]string
	k       Keys
	log     *zap.Logger
	seq     atomic.Int64
	w       *writer
	// arriving counts the results handed to their calls and not yet
	// returned to the engine (Arriving).
	arriving atomic.Int64

	closeOnce sync.Once
	ctx       context.Context // ends with Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu     sync.Mutex
	zones  map[string]int        // zone → live agents (of this protocol)
	agents map[string]*liveAgent // registration key → live agent
	served map[string]bool       // zones that had agents during this dispatcher's life
	runs   map[string]*runWork
	ready  chan struct{} // closed once the agents are listed
	// otherProto are the agents of another protocol logged, by name.
	otherProto protoWarnings

	pubMu     sync.Mutex
	published bool // the graph is published for the agents
}

var _ step.Host = (*Dispatcher)(nil)

// NewDispatcher starts following the agents' registrations.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{o: o, k: o.Keys, log: o.Logger, ctx: ctx, cancel: cancel, hash: o.Graph.Hash(),
		zones: map[string]int{}, agents: map[string]*liveAgent{}, served: map[string]bool{}, runs: map[string]*runWork{}, ready: make(chan struct{}), otherProto: protoWarnings{}}
	d.zonesOf = map[string][]string{}
	for _, n := range o.Graph.Nodes {
		if !slices.Contains(d.zonesOf[n.Plugin], n.Zone) {
			d.zonesOf[n.Plugin] = append(d.zonesOf[n.Plugin], n.Zone)
		}
	}
	d.w = newWriter(o.Client, d.log, o.MaxTxnOps, d.groupOffers, d.k.Writes()+writerID()+"/")
	d.wg.Add(2)
	go func() { defer d.wg.Done(); d.watchAgents() }()
	go func() {
		// Published now, the agents fetch and parse it while the engine
		// prepares the run, not when the first steps reach them.
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
		defer cancel()
		d.publish(ctx)
	}()
	return d
}

// publish publishes the graph for the agents, once.
func (d *Dispatcher) publish(ctx context.Context) error {
	d.pubMu.Lock()
	defer d.pubMu.Unlock()
	if d.published {
		return nil
	}
	if err := publishGraph(ctx, d.o.Client, d.k, d.o.Graph, d.hash); err != nil {
		return err
	}
	d.published = true
	return nil
}

// Close stops the dispatcher and closes the local host.
func (d *Dispatcher) Close() error {
	first := false
	d.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	d.cancel()
	d.wg.Wait()
	d.w.close()
	if d.o.Local != nil {
		return d.o.Local.Close()
	}
	return nil
}

// watchAgents keeps the live agents, and their count per zone.
func (d *Dispatcher) watchAgents() {
	var once sync.Once
	defer once.Do(func() { close(d.ready) })
	for d.ctx.Err() == nil {
		resp, err := d.o.Client.Get(d.ctx, d.k.Agents(), clientv3.WithPrefix())
		if err != nil {
			sleep(d.ctx, time.Second)
			continue
		}
		d.mu.Lock()
		old := d.agents
		d.zones, d.agents = map[string]int{}, map[string]*liveAgent{}
		for _, kv := range resp.Kvs {
			d.seeAgentLocked(kv, old[string(kv.Key)])
		}
		d.mu.Unlock()
		once.Do(func() { close(d.ready) })
		wch := d.o.Client.Watch(d.ctx, d.k.Agents(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			d.mu.Lock()
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				prev := d.agents[key]
				if prev != nil {
					if prev.compatible() {
						d.zones[prev.zone]--
					}
					delete(d.agents, key)
				}
				if ev.Type == mvccpb.PUT {
					d.seeAgentLocked(ev.Kv, prev)
				}
			}
			d.mu.Unlock()
		}
	}
}

// seeAgentLocked records the registration kv; prev is what was known of
// the same key (its offers in flight carry over if the lease is the same).
func (d *Dispatcher) seeAgentLocked(kv *mvccpb.KeyValue, prev *liveAgent) {
	var ai AgentInfo
	if json.Unmarshal(kv.Value, &ai) != nil {
		return
	}
	la := &liveAgent{key: string(kv.Key), name: ai.Name, zone: ai.Zone, slots: ai.Slots,
		lease: clientv3.LeaseID(kv.Lease), draining: ai.Draining, protocol: ai.Protocol}
	if prev != nil && prev.lease == la.lease {
		la.busy = prev.busy
	}
	d.agents[la.key] = la
	if !la.compatible() {
		// Offered nothing, and no agent of its zone: the zone's steps go
		// as they go for a zone without agents.
		d.otherProto.warn(d.log, ai.Name, ai.Protocol,
			fmt.Sprintf("agent %s (zone %s) speaks %s, this coordinator protocol %d: not offered any step; upgrade it",
				ai.Name, ai.Zone, protocolName(ai.Protocol), ProtocolVersion),
			zap.String("agent", ai.Name), zap.String("zone", ai.Zone))
		return
	}
	if _, ok := d.otherProto[ai.Name]; ok {
		delete(d.otherProto, ai.Name)
		d.log.Info(fmt.Sprintf("agent %s (zone %s) now speaks this coordinator's protocol %d: offered steps", ai.Name, ai.Zone, ProtocolVersion))
	}
	d.zones[ai.Zone]++
	d.served[ai.Zone] = true
}

// Agents returns the live agents of each zone.
func (d *Dispatcher) Agents() map[string]int {
	<-d.ready
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.zones))
	for z, n := range d.zones {
		if n > 0 {
			out[z] = n
		}
	}
	return out
}

// remote reports whether node's calls go to agents: with AgentsOnly
// always; else when its zone has (or had, during this run) agents.
func (d *Dispatcher) remote(node string) (zone string, ok bool) {
	n, found := d.o.Graph.Node(node)
	if !found {
		return "", d.o.AgentsOnly
	}
	if d.o.AgentsOnly {
		return n.Zone, true
	}
	if n.Zone == "" {
		return "", false
	}
	select {
	case <-d.ready:
	case <-d.ctx.Done():
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return n.Zone, d.served[n.Zone]
}

// Expect is told by the engine that n steps of plugin are about to start
// together (engine's callBatcher): when every node of plugin goes to
// agents, the next offers wait for them (a little), so that they travel in
// one transaction; when none does, the local host is told.
func (d *Dispatcher) Expect(plugin string, n int) {
	remote, local := 0, 0
	select {
	case <-d.ready:
	case <-d.ctx.Done():
	}
	d.mu.Lock()
	for _, zone := range d.zonesOf[plugin] {
		if d.o.AgentsOnly || zone != "" && d.served[zone] {
			remote++
		} else {
			local++
		}
	}
	d.mu.Unlock()
	switch {
	case remote > 0 && local == 0:
		d.w.expect(n)
	case local > 0 && remote == 0:
		if b, ok := d.o.Local.(interface{ Expect(string, int) }); ok {
			b.Expect(plugin, n)
		}
	}
}

// CheckPins checks, on this machine, the plugins of the nodes that run
// here; the agents check theirs when they claim a step.
func (d *Dispatcher) CheckPins(ctx context.Context, names []string) error {
	pc, ok := d.o.Local.(interface {
		CheckPins(context.Context, []string) error
	})
	if !ok {
		return nil
	}
	local := map[string]bool{}
	for _, n := range d.o.Graph.Nodes {
		if _, remote := d.remote(n.ID); !remote {
			local[n.Plugin] = true
		}
	}
	var mine []string
	for _, name := range names {
		if local[name] {
			mine = append(mine, name)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	return pc.CheckPins(ctx, mine)
}

// errAgentsOnly answers the local calls a dispatcher without a local host
// cannot make.
var errAgentsOnly = errors.New("not available: steps run on agents only (--agents-only)")

// Describe asks the local host (the plugins' kinds are checked there).
func (d *Dispatcher) Describe(ctx context.Context, plugin string) (step.PluginInfo, error) {
	if d.o.Local == nil {
		return step.PluginInfo{}, errAgentsOnly
	}
	for _, n := range d.o.Graph.Nodes {
		if _, remote := d.remote(n.ID); n.Plugin == plugin && !remote {
			return d.o.Local.Describe(ctx, plugin)
		}
	}
	// Only agents run this plugin: its binary may not be on this machine.
	return step.PluginInfo{}, fmt.Errorf("plugin %q runs on agents only", plugin)
}

// Validate asks the local host.
func (d *Dispatcher) Validate(ctx context.Context, req step.Request) ([]string, error) {
	if d.o.Local == nil {
		return nil, errAgentsOnly
	}
	return d.o.Local.Validate(ctx, req)
}

// Check asks the node's agent or the local host.
func (d *Dispatcher) Check(ctx context.Context, req step.Request) (step.CheckResult, error) {
	zone, remote := d.remote(req.NodeID)
	if !remote {
		return d.o.Local.Check(ctx, req)
	}
	res, err := d.call(ctx, opCheck, zone, req, nil)
	if err != nil {
		return step.CheckResult{}, err
	}
	if res.Op == opRestore { // an adopted restore, finished or running when this coordinator took over
		restored := res.Status == step.Succeeded
		msg := fmt.Sprintf("the step ran on agent %s while no coordinator led: %s", res.Agent, res.Status)
		if res.Message != "" {
			msg += ": " + res.Message
		}
		return step.CheckResult{Restored: restored, Message: msg, Outputs: res.Outputs}, nil
	}
	return step.CheckResult{Restored: res.Restored, Message: res.Message, Outputs: res.Outputs}, nil
}

// Restore runs the step on an agent of the node's zone, or locally.
func (d *Dispatcher) Restore(ctx context.Context, req step.Request, onEvent func(step.Event)) (step.Result, error) {
	zone, remote := d.remote(req.NodeID)
	if !remote {
		return d.o.Local.Restore(ctx, req, onEvent)
	}
	res, err := d.call(ctx, opRestore, zone, req, onEvent)
	if err != nil {
		return step.Result{}, err
	}
	return step.Result{Status: res.Status, Message: res.Message, Outputs: res.Outputs}, nil
}

// Verify runs the health check on an agent of the node's zone, or locally.
func (d *Dispatcher) Verify(ctx context.Context, req step.Request) (step.Result, error) {
	zone, remote := d.remote(req.NodeID)
	if !remote {
		return d.o.Local.Verify(ctx, req)
	}
	res, err := d.call(ctx, opVerify, zone, req, nil)
	if err != nil {
		return step.Result{}, err
	}
	return step.Result{Status: res.Status, Message: res.Message, Outputs: res.Outputs}, nil
}

// RemoteError is a call's error on an agent.
type RemoteError struct {
	Agent, Msg string
	Perm       bool
}

// Error says which agent.
func (e *RemoteError) Error() string { return fmt.Sprintf("on agent %s: %s", e.Agent, e.Msg) }

// Permanent reports whether a retry cannot mend it (a pin mismatch …).
func (e *RemoteError) Permanent() bool { return e.Perm }
