package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// DefaultTTL is an agent's (and a coordinator's) lease when none is given:
// a dead agent's steps go to another agent after at most this long.
const DefaultTTL = 10 * time.Second

// DefaultSlots is how many steps an agent runs at once when none is given.
const DefaultSlots = 4

// ErrNameTaken is returned by Register when a live agent already holds the
// name.
var ErrNameTaken = errors.New("agent name already registered")

// NameTakenError says which agent holds the name.
type NameTakenError struct{ Holder AgentInfo }

// Error names the live agent and what to do.
func (e *NameTakenError) Error() string {
	h := e.Holder
	return fmt.Sprintf("agent %q is already registered (zone %q, host %s, pid %d, since %s): %v; give this agent another --name, or stop that one (a dead agent's name is free once its lease expires)",
		h.Name, h.Zone, h.Host, h.PID, h.Started.UTC().Format(time.RFC3339), ErrNameTaken)
}

// Unwrap returns ErrNameTaken.
func (e *NameTakenError) Unwrap() error { return ErrNameTaken }

// AgentOptions configure an Agent.
type AgentOptions struct {
	Client *clientv3.Client
	Keys   Keys
	Name   string // unique among live agents
	Zone   string // the zone whose steps it takes
	Slots  int    // steps at once (0: DefaultSlots)
	TTL    time.Duration
	// NewHost builds the local plugin host of a graph (the graph's plugin
	// paths and pins resolve on this machine). To start plugins while a
	// graph is parsed, it may be given a graph without nodes, holding only
	// what a host is built from: Name, File, Dir, Plugins, Limits (warm.go).
	NewHost func(g *graphs.Graph, log *zap.Logger) step.Host
	Logger  *zap.Logger
	// LookupEnv resolves ${env:…} and ${secret:…} here (nil: os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// MaxTxnOps is the members' --max-txn-ops, when lower than etcd's
	// default (0: the default).
	MaxTxnOps int
	// HostIdle is how long the plugin host of a graph stays up with no
	// call (0: DefaultHostIdle; agenthost.go).
	HostIdle time.Duration
}

// Agent takes the steps of its zone through etcd and runs them locally.
type Agent struct {
	opts   AgentOptions
	log    *zap.Logger
	graphs graphCache
	eng    *engine.Engine // resolves configurations, with the agent's redactor
	red    *engine.Redactor

	mu      sync.Mutex
	lease   clientv3.LeaseID
	cand    map[string]candidate // item key → waiting item
	queue   []string             // item keys, oldest first (stale ones skipped)
	running map[string]*running  // item key → the call this agent runs
	hosts   map[string]*localHost
	// loseClaim, in tests, makes the answer of a claim that committed
	// look lost.
	loseClaim func() bool
	// loseResult, in tests, makes the answer of a result write that
	// committed look lost.
	loseResult func() bool
	// warmups are the warm-ups Run's prefetch started (warm.go, graph.go);
	// stopped is set once Run waits for them before its final close of
	// the hosts: no warm-up starts, and no host is built, after it
	// (agenthost.go).
	warmups sync.WaitGroup
	stopped bool
	wake    chan struct{}
	results chan *pendingResult
	// offers are calls a coordinator offered this agent, waiting for a
	// free slot (agentoffer.go); batches are the offer batches it answers,
	// by key; settled those it answered in full, until their deletion is
	// seen (a listing of the work then never queues them again).
	offers   []claimable
	batches  map[string]*batchState
	settled  map[string]bool
	batchSeq atomic.Int64
	paused   bool // the lease was lost: claim nothing until registered again
	seen     int  // items of this agent's zone seen (for the idle log line)
	// otherProto are the coordinators of another protocol logged
	// (protocol.go), by name.
	otherProto protoWarnings
	claimed    atomic.Int64
	// heard is when etcd last renewed the lease (Unix ns): offers start
	// only while that is recent (agentoffer.go).
	heard atomic.Int64
}

type candidate struct {
	item Item
	rev  int64
}

type running struct {
	item       Item
	claimRev   int64
	offer      string // its offer batch ("": claimed by this agent)
	cancel     context.CancelFunc
	superseded bool   // the coordinator withdrew the call: no result to write
	withdrawn  string // an offered call: the key that withdrew it
}

// NewAgent returns an agent; Register it, then Run it.
func NewAgent(o AgentOptions) *Agent {
	if o.Slots <= 0 {
		o.Slots = DefaultSlots
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.HostIdle <= 0 {
		o.HostIdle = DefaultHostIdle
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	red := engine.NewRedactor()
	a := &Agent{
		opts:    o,
		log:     red.WrapLogger(o.Logger).With(zap.String("agent", o.Name), zap.String("zone", o.Zone)),
		graphs:  graphCache{cli: o.Client, k: o.Keys},
		red:     red,
		eng:     engine.New(nil, nil, engine.Options{Redactor: red, LookupEnv: o.LookupEnv}),
		cand:    map[string]candidate{},
		running: map[string]*running{},
		hosts:   map[string]*localHost{},
		wake:    make(chan struct{}, 1),
		results: make(chan *pendingResult, 64),
		batches: map[string]*batchState{},
		settled: map[string]bool{},

		otherProto: protoWarnings{},
	}
	a.graphs.parsed = a.verifyEarly
	return a
}

// Info is what the agent registers.
func (a *Agent) info() AgentInfo {
	host, _ := os.Hostname()
	return AgentInfo{Name: a.opts.Name, Zone: a.opts.Zone, Slots: a.opts.Slots, Host: host, PID: os.Getpid(), Started: time.Now().UTC(), Protocol: ProtocolVersion}
}

// Register takes the agent's name under a new lease. A live agent with the
// same name makes it fail with a *NameTakenError.
func (a *Agent) Register(ctx context.Context) error {
	if n := a.opts.Name; n == "" || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("agent name %q: it must be non-empty and hold no '/'", n)
	}
	k := a.opts.Keys.Agent(a.opts.Name)
	ttl := int64(max(1, a.opts.TTL.Round(time.Second)/time.Second))
	lease, err := a.opts.Client.Grant(ctx, ttl)
	if err != nil {
		return fmt.Errorf("agent %q: take a lease: %w", a.opts.Name, err)
	}
	val, _ := json.Marshal(a.info())
	resp, err := a.opts.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(val), clientv3.WithLease(lease.ID))).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		a.opts.Client.Revoke(context.WithoutCancel(ctx), lease.ID)
		return fmt.Errorf("agent %q: register: %w", a.opts.Name, err)
	}
	if !resp.Succeeded {
		a.opts.Client.Revoke(context.WithoutCancel(ctx), lease.ID)
		var h AgentInfo
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			json.Unmarshal(kvs[0].Value, &h)
		}
		if h.Name == "" {
			h.Name = a.opts.Name
		}
		return &NameTakenError{Holder: h}
	}
	a.mu.Lock()
	a.lease = lease.ID
	a.paused = false
	a.mu.Unlock()
	a.heard.Store(time.Now().UnixNano())
	a.log.Info("agent registered", zap.Int("slots", a.opts.Slots), zap.Duration("ttl", a.opts.TTL), zap.Int64("lease", int64(lease.ID)))
	return nil
}

// Lease returns the agent's current lease (0 before Register).
func (a *Agent) Lease() clientv3.LeaseID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lease
}

// Run takes and runs steps until drain is done: it then claims nothing
// new, lets the steps it runs finish and write their results, and gives
// its name back. If hard is done first (a second signal), running steps
// are cancelled and handed back: the coordinator gives them to another
// agent, which asks Check first. Run returns nil after a clean stop.
func (a *Agent) Run(drain, hard context.Context) error {
	ctx, stop := context.WithCancel(hard)
	defer stop()
	a.mu.Lock()
	a.stopped = false // Run again after a Run that returned
	a.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); a.keepAlive(ctx, drain) }()
	go func() { defer wg.Done(); a.watch(ctx) }()
	go func() { defer wg.Done(); a.prefetch(ctx) }()
	go func() { defer wg.Done(); a.closeIdleHosts(ctx) }()
	rstop, stopResults := context.WithCancel(context.Background())
	var rw sync.WaitGroup
	// Claims and results are group-committed: see pipelines.
	for range pipelines {
		rw.Add(1)
		go func() { defer rw.Done(); a.resultLoop(hard, rstop) }()
	}
	sem := make(chan struct{}, a.opts.Slots)
	var cl sync.WaitGroup
	for range pipelines {
		cl.Add(1)
		go func() { defer cl.Done(); a.claimLoop(drain, hard, sem) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-drain.Done():
			a.setDraining() // offered nothing more
		case <-ctx.Done():
		}
	}()
	cl.Wait() // drain (or hard) is done and every step ended
	a.handBackOffers(hard)
	stopResults()
	rw.Wait()
	stop()
	wg.Wait()
	a.stopWarmups() // cancelled by stop: no plugin starts after the close below
	a.mu.Lock()
	lease := a.lease
	hosts := a.hosts
	a.hosts = map[string]*localHost{}
	a.mu.Unlock()
	for _, lh := range hosts {
		lh.close()
	}
	forgetIdleGraphs(time.Now(), 0) // those nothing holds (parsedGraphs)
	if lease != 0 {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := a.opts.Client.Revoke(rctx, lease); err != nil {
			a.log.Warn("give the agent's name back: the lease will expire by itself", zap.Error(err))
		}
	}
	a.log.Info("agent stopped")
	return nil
}

// keepAlive keeps the lease alive; when it is lost (etcd unreachable past
// the TTL), the agent claims nothing until its steps have ended and it has
// registered again.
func (a *Agent) keepAlive(ctx, drain context.Context) {
	for ctx.Err() == nil {
		lease := a.Lease()
		ch, err := a.opts.Client.KeepAlive(ctx, lease)
		if err == nil {
			for ka := range ch {
				if ka.TTL > 0 {
					a.heard.Store(time.Now().UnixNano())
					a.notify() // offers held back for want of news may start
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		// The client gave up after a TTL without an answer. Claim nothing
		// until etcd answers again; if the lease is still alive there (the
		// cluster lost its quorum, and leases do not expire without one),
		// go on with it: its claims still hold.
		a.mu.Lock()
		a.paused = true
		a.mu.Unlock()
		if a.leaseAlive(ctx, lease) {
			a.mu.Lock()
			a.paused = false
			a.mu.Unlock()
			a.log.Warn("etcd answers again and the agent's lease is alive: going on")
			a.notify()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.lease = 0
		a.mu.Unlock()
		a.log.Error("agent lost its lease (etcd unreachable past its TTL?): its running steps' results will be refused; registering again once they end")
		for ctx.Err() == nil && a.busy() > 0 {
			sleep(ctx, 200*time.Millisecond)
		}
		for ctx.Err() == nil && drain.Err() == nil {
			err := a.Register(ctx)
			if err == nil {
				a.notify()
				break
			}
			a.log.Warn("register again", zap.Error(err))
			sleep(ctx, a.opts.TTL/2)
		}
		if drain.Err() != nil {
			return
		}
	}
}

// leaseAlive waits until etcd answers (a quorum) and tells whether lease
// is still alive there.
func (a *Agent) leaseAlive(ctx context.Context, lease clientv3.LeaseID) bool {
	said := false
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := a.opts.Client.TimeToLive(cctx, lease)
		cancel()
		if err == nil {
			return resp.TTL > 0
		}
		if !said {
			a.log.Warn("etcd does not answer (quorum lost?): claiming nothing until it does", zap.Error(err))
			said = true
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return false
}

func (a *Agent) busy() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (a *Agent) notify() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// pipelines is how many claim (and result) transactions an agent has in
// flight at once. One, for the reason of the dispatcher's maxInFlight:
// what queues while a transaction commits goes in the next one.
const pipelines = 1

// claimBatch is how many claims go in one transaction, and resultBatch how
// many results, within the ops budget: a claim is one nested transaction,
// a result of an offered call a share of one (its offer batch's: a put, a
// delete, and a delete per call withdrawn).
func (a *Agent) claimBatch() int  { return min(maxClaimBatch, opsBudget(a.opts.MaxTxnOps)) }
func (a *Agent) resultBatch() int { return max(1, min(maxResultBatch, opsBudget(a.opts.MaxTxnOps)-2)) }

// maxClaimBatch bounds the claims of one transaction (each is a nested
// transaction of two puts: well under etcd's --max-txn-ops).
const maxClaimBatch = 30

// maxResultBatch bounds the results of one transaction: each is a nested
// transaction of at most two operations, and etcd's --max-txn-ops (128 by
// default) bounds the operations of each level of a transaction.
const maxResultBatch = 100

// take waits for work and returns up to n calls: offers (claimed for this
// agent already) first, then items to claim (at most maxClaimBatch, one
// transaction's claims); none once drain is done.
func (a *Agent) take(drain context.Context, n int) (offers, out []claimable) {
	for {
		if drain.Err() != nil {
			return nil, nil
		}
		a.mu.Lock()
		if !a.paused && a.leaseFresh() {
			offers = a.takeOffersLocked(n)
		}
		if !a.paused {
			for len(a.queue) > 0 && len(offers)+len(out) < n && len(out) < a.claimBatch() {
				// A random one near the head: agents of a zone then seldom
				// race for the same item.
				i := rand.IntN(min(len(a.queue), 4*n))
				a.queue[0], a.queue[i] = a.queue[i], a.queue[0]
				key := a.queue[0]
				a.queue = a.queue[1:]
				if c, ok := a.cand[key]; ok {
					delete(a.cand, key)
					out = append(out, claimable{key: key, c: c})
				}
			}
		}
		more := len(a.queue) > 0 || len(a.offers) > 0
		a.mu.Unlock()
		if len(offers)+len(out) > 0 {
			if more {
				a.notify() // another claimer may take the rest
			}
			return offers, out
		}
		select {
		case <-drain.Done():
			return nil, nil
		case <-a.wake:
		}
	}
}

type claimable struct {
	key   string // the node's item key
	c     candidate
	rev   int64  // the claim's revision, once claimed (offered: its batch's)
	offer string // offered: its offer batch
}

// announce tells the local plugin hosts how many of cls's calls are about
// to reach each plugin at once, so that they go in one message (engine/host
// Expect): the restores of graphs already fetched, without a Check first.
func (a *Agent) announce(cls []claimable) {
	if len(cls) < 2 {
		return
	}
	type target struct {
		lh     *localHost
		plugin string
	}
	counts := map[target]int{}
	a.mu.Lock()
	for _, cl := range cls {
		it := cl.c.item
		if it.Op != opRestore || it.CheckFirst {
			continue
		}
		lh := a.hosts[it.Graph+"\x00"+it.GraphFile]
		if lh == nil || !lh.up.Load() || lh.gone.Load() {
			continue
		}
		if n, ok := lh.graph.Node(it.Req.NodeID); ok {
			counts[target{lh, n.Plugin}]++
		}
	}
	a.mu.Unlock()
	for t, n := range counts {
		if b, ok := t.lh.h.(interface{ Expect(string, int) }); ok && n > 1 {
			b.Expect(t.plugin, n)
		}
	}
}

// Claimed returns how many calls the agent has taken since it started:
// claimed itself, or offered to it by a coordinator.
func (a *Agent) Claimed() int { return int(a.claimed.Load()) }
