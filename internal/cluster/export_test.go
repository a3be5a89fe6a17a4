package cluster

import clientv3 "go.etcd.io/etcd/client/v3"

// SetTracer makes f see each phase of each call (nil: none).
func SetTracer(f func(node, phase string)) {
	if f == nil {
		tracer.Store(nil)
		return
	}
	tracer.Store(&f)
}

// SetAgentSlots makes d believe that agent name (registered, live) has
// slots free slots, as a second coordinator's offers would make it run
// more than it can: offers then wait in the agent for a free slot.
func (d *Dispatcher) SetAgentSlots(name string, slots int) bool {
	<-d.ready
	d.mu.Lock()
	defer d.mu.Unlock()
	la := d.agents[d.k.Agent(name)]
	if la == nil {
		return false
	}
	la.slots = slots
	return true
}

// AddGhostAgent makes d believe that an agent name of zone is registered
// under lease (a lease that expired: its offers are written unclaimed).
func (d *Dispatcher) AddGhostAgent(name, zone string, slots int, lease int64) {
	<-d.ready
	d.mu.Lock()
	defer d.mu.Unlock()
	key := d.k.Agent(name)
	d.agents[key] = &liveAgent{key: key, name: name, zone: zone, slots: slots, lease: clientv3.LeaseID(lease), protocol: ProtocolVersion}
}

// Busy returns how many steps a runs now.
func (a *Agent) Busy() int { return a.busy() }

// GraphParsed reports whether the agents of this process hold the graph
// of hash hash parsed under file (parsedGraphs).
func GraphParsed(hash, file string) bool { return parsedAlready(hash, file) }

// LoseResultAnswers makes the answers of a's result writes that committed
// look lost while f says so (the write committed, its answer never came).
func (a *Agent) LoseResultAnswers(f func() bool) { a.loseResult = f }
