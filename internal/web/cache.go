package web

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// graphCache keeps the parsed graph snapshots of the runs served, keyed by
// what identifies their content: the run, its graph file name (relative
// paths resolve against it) and the snapshot's SHA-256 (state.Run.GraphHash,
// which the store keeps in step with the snapshot). A resume with an
// edited graph or `reprise edit` stores a new snapshot, hence a new hash:
// the next page parses it, the old entry ages out. Parsing a 10,000-node
// snapshot costs about half a second; every page of a run needs its graph.
//
// Safe for concurrent use; the graphs it hands out are only read.
type graphCache struct {
	mu      sync.Mutex
	entries map[string]*cachedGraph
	tick    uint64
	parses  uint64 // how many snapshots were parsed (for tests)
}

type cachedGraph struct {
	once sync.Once
	g    *graphs.Graph
	err  error
	used uint64

	lmu    sync.Mutex
	layout *layout // of the run's nodes (its size says which)
}

// graphCacheSize bounds the graphs kept: a state file's few recent runs.
const graphCacheSize = 8

func newGraphCache() *graphCache { return &graphCache{entries: map[string]*cachedGraph{}} }

// loader returns the view.LoadOptions.Graph of src: the cached graph of a
// run, parsed once per content.
func (c *graphCache) loader(src view.Source) func(state.Run) (*graphs.Graph, error) {
	return func(run state.Run) (*graphs.Graph, error) {
		sum := run.GraphHash
		var data []byte
		if sum == "" { // a store that does not keep the hash: hash the bytes
			b, err := src.Snapshot(run.ID)
			if err != nil {
				return view.ReadGraph(src, run)
			}
			h := sha256.Sum256(b)
			sum, data = hex.EncodeToString(h[:]), b
		}
		key := run.ID + "\x00" + run.GraphFile + "\x00" + sum
		c.mu.Lock()
		e := c.entries[key]
		if e == nil {
			e = &cachedGraph{}
			c.entries[key] = e
			c.evict()
		}
		c.tick++
		e.used = c.tick
		c.mu.Unlock()
		e.once.Do(func() {
			c.mu.Lock()
			c.parses++
			c.mu.Unlock()
			if data != nil {
				e.g, e.err = view.ParseSnapshot(run, data)
				return
			}
			e.g, e.err = view.ReadGraph(src, run)
		})
		return e.g, e.err
	}
}

// layoutOf returns the layout of m's graph, computed once per graph
// content and set of nodes.
func (c *graphCache) layoutOf(m *view.Model) *layout {
	c.mu.Lock()
	e := c.entries[m.Run.ID+"\x00"+m.Run.GraphFile+"\x00"+m.Run.GraphHash]
	c.mu.Unlock()
	if e == nil || m.Run.GraphHash == "" {
		return newLayout(m)
	}
	e.lmu.Lock()
	defer e.lmu.Unlock()
	if l := e.layout; l != nil && len(l.Boxes) == len(m.Nodes) && sameNodes(l, m) {
		return l
	}
	e.layout = newLayout(m)
	return e.layout
}

// sameNodes reports whether l was laid out for m's nodes, in m's order.
func sameNodes(l *layout, m *view.Model) bool {
	for i := range m.Nodes {
		if l.Boxes[i].ID != m.Nodes[i].ID {
			return false
		}
	}
	return true
}

// evict drops the least recently used entries beyond graphCacheSize.
// Called with c.mu held.
func (c *graphCache) evict() {
	for len(c.entries) > graphCacheSize {
		var oldest string
		var at uint64
		for k, e := range c.entries {
			if oldest == "" || e.used < at {
				oldest, at = k, e.used
			}
		}
		delete(c.entries, oldest)
	}
}

// modelCache shares the loading of a run among the pages asked for at the
// same moment: fifty wall screens refreshing their overview after the
// same journal entries cost one read of the run, not fifty. A load is
// reused for modelTTL after it ended; an action through the dashboard
// forgets the run's loads, so that its author's next page shows it.
type modelCache struct {
	mu      sync.Mutex
	entries map[modelKey]*modelLoad
	loads   uint64 // how many loads ran (for tests)
}

type modelKey struct {
	run     string
	journal bool
}

type modelLoad struct {
	done chan struct{}
	d    *runData
	err  error
	at   time.Time // when the load ended
}

// modelTTL is how long a loaded run is reused: well under the second an
// event may take to reach a page.
const modelTTL = 250 * time.Millisecond

func newModelCache() *modelCache { return &modelCache{entries: map[modelKey]*modelLoad{}} }

// get returns the run's data loaded by load, shared with the callers of
// the same moment.
func (c *modelCache) get(run string, journal bool, load func() (*runData, error)) (*runData, error) {
	k := modelKey{run, journal}
	c.mu.Lock()
	e := c.entries[k]
	if e != nil {
		select {
		case <-e.done:
			if time.Since(e.at) > modelTTL {
				e = nil
			}
		default: // in flight: wait for it
		}
	}
	if e == nil {
		e = &modelLoad{done: make(chan struct{})}
		c.entries[k] = e
		c.loads++
		if len(c.entries) > 64 {
			c.sweep()
		}
		c.mu.Unlock()
		e.d, e.err = load()
		e.at = time.Now()
		close(e.done)
		return e.d, e.err
	}
	c.mu.Unlock()
	<-e.done
	return e.d, e.err
}

// forget drops the loads of run.
func (c *modelCache) forget(run string) {
	c.mu.Lock()
	delete(c.entries, modelKey{run, false})
	delete(c.entries, modelKey{run, true})
	c.mu.Unlock()
}

// sweep drops the ended loads older than modelTTL. Called with c.mu held.
func (c *modelCache) sweep() {
	for k, e := range c.entries {
		select {
		case <-e.done:
			if time.Since(e.at) > modelTTL {
				delete(c.entries, k)
			}
		default:
		}
	}
}
