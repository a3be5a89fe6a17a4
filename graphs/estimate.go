package graphs

import (
	"container/heap"
	"time"
)

// EstimateDuration simulates a run of g at the given parallelism (values
// below 1 count as 1) with every node taking its estimate, and returns the
// time the last node ends. Ready nodes start in the scheduler's priority
// order: highest effective criticality, then longest remaining path, then
// id. Per-plugin caps are not simulated. O((V+E) log V).
func EstimateDuration(g *Graph, a *Analysis, parallelism int) time.Duration {
	if parallelism < 1 {
		parallelism = 1
	}
	n := len(g.Nodes)
	rank := idRanks(g)
	eff := make([]int8, n)
	for v, c := range a.Effective {
		eff[v] = int8(c.Rank())
	}
	ready := &prioHeap{less: func(x, y int) bool {
		ex, ey := eff[x], eff[y]
		if ex != ey {
			return ex > ey
		}
		if a.Remaining[x] != a.Remaining[y] {
			return a.Remaining[x] > a.Remaining[y]
		}
		return rank[x] < rank[y]
	}}
	pending := make([]int, n)
	for v := range g.Nodes {
		pending[v] = len(a.Deps[v])
		if pending[v] == 0 {
			ready.items = append(ready.items, v)
		}
	}
	heap.Init(ready)
	finish := make([]time.Duration, n)
	running := &prioHeap{}
	running.less = func(x, y int) bool {
		if finish[x] != finish[y] {
			return finish[x] < finish[y]
		}
		return x < y
	}
	var now time.Duration
	for {
		for running.Len() < parallelism && ready.Len() > 0 {
			v := heap.Pop(ready).(int)
			finish[v] = now + g.Nodes[v].Estimate
			heap.Push(running, v)
		}
		if running.Len() == 0 {
			return now
		}
		v := heap.Pop(running).(int)
		now = finish[v]
		for _, w := range a.Dependents[v] {
			pending[w]--
			if pending[w] == 0 {
				heap.Push(ready, w)
			}
		}
	}
}

// prioHeap is a heap of node indexes ordered by less.
type prioHeap struct {
	items []int
	less  func(x, y int) bool
}

func (h *prioHeap) Len() int           { return len(h.items) }
func (h *prioHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *prioHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *prioHeap) Push(x any)         { h.items = append(h.items, x.(int)) }
func (h *prioHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}
