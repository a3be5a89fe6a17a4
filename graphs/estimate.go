package graphs

import "time"

// EstimateDuration simulates a run of g at the given parallelism (values
// below 1 count as 1) with every node taking its estimate, and returns the
// time the last node ends. Ready nodes start in the scheduler's priority
// order: highest effective criticality, then longest remaining path, then
// id; as in the scheduler, a node whose plugin is at its max_parallel waits
// for one of that plugin's steps to end while others go ahead.
// O((V+E) log V).
func EstimateDuration(g *Graph, a *Analysis, parallelism int) time.Duration {
	if parallelism < 1 {
		parallelism = 1
	}
	n := len(g.Nodes)
	rank := a.rank
	if len(rank) != n {
		rank = idRanks(g)
	}
	ready := &readyHeap{eff: make([]int8, n), rem: a.Remaining, rank: rank}
	for v, c := range a.Effective {
		ready.eff[v] = int8(c.Rank())
	}
	pending := make([]int, n)
	for v := range g.Nodes {
		pending[v] = len(a.Deps[v])
		if pending[v] == 0 {
			ready.push(int32(v))
		}
	}
	est := make([]time.Duration, n) // read in node order, not at random
	for v, nd := range g.Nodes {
		est[v] = nd.Estimate
	}
	// Per-plugin caps: capOf[v] is node v's plugin's max_parallel (0: none).
	capOf := make([]int, n)
	for v, nd := range g.Nodes {
		capOf[v] = g.Plugins[nd.Plugin].MaxParallel
	}
	busy := map[string]int{}        // capped plugin → steps running
	held := map[string]*readyHeap{} // capped plugin → ready nodes waiting for it
	running := &finishHeap{at: make([]time.Duration, n)}
	var now time.Duration
	for {
		for len(running.items) < parallelism && len(ready.items) > 0 {
			v := ready.pop()
			if c := capOf[v]; c > 0 {
				p := g.Nodes[v].Plugin
				if busy[p] >= c {
					if held[p] == nil {
						held[p] = &readyHeap{eff: ready.eff, rem: ready.rem, rank: ready.rank}
					}
					held[p].push(v)
					continue
				}
				busy[p]++
			}
			running.at[v] = now + est[v]
			running.push(v)
		}
		if len(running.items) == 0 {
			return now
		}
		v := running.pop()
		now = running.at[v]
		if capOf[v] > 0 {
			p := g.Nodes[v].Plugin
			busy[p]--
			if h := held[p]; h != nil && len(h.items) > 0 { // one slot: the first in line
				ready.push(h.pop())
			}
		}
		for _, w := range a.Dependents[v] {
			pending[w]--
			if pending[w] == 0 {
				ready.push(int32(w))
			}
		}
	}
}

// readyHeap orders ready nodes by the scheduler's priority. A typed binary
// heap: container/heap would box every index into an interface.
type readyHeap struct {
	items []int32
	eff   []int8
	rem   []time.Duration
	rank  []int
}

func (h *readyHeap) less(x, y int32) bool {
	if h.eff[x] != h.eff[y] {
		return h.eff[x] > h.eff[y]
	}
	if h.rem[x] != h.rem[y] {
		return h.rem[x] > h.rem[y]
	}
	return h.rank[x] < h.rank[y]
}

func (h *readyHeap) push(v int32) {
	h.items = append(h.items, v)
	siftUp(h.items, len(h.items)-1, h.less)
}

func (h *readyHeap) pop() int32 {
	return popHeap(&h.items, h.less)
}

// finishHeap orders running nodes by the time they end, then index.
type finishHeap struct {
	items []int32
	at    []time.Duration
}

func (h *finishHeap) less(x, y int32) bool {
	if h.at[x] != h.at[y] {
		return h.at[x] < h.at[y]
	}
	return x < y
}

func (h *finishHeap) push(v int32) {
	h.items = append(h.items, v)
	siftUp(h.items, len(h.items)-1, h.less)
}

func (h *finishHeap) pop() int32 { return popHeap(&h.items, h.less) }

func siftUp(items []int32, i int, less func(x, y int32) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(items[i], items[p]) {
			return
		}
		items[i], items[p] = items[p], items[i]
		i = p
	}
}

func popHeap(items *[]int32, less func(x, y int32) bool) int32 {
	h := *items
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && less(h[l], h[m]) {
			m = l
		}
		if r < len(h) && less(h[r], h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*items = h
	return top
}
