package engine

import (
	"container/heap"

	"github.com/reprise-si/reprise/graphs"
)

// readyQueue orders the nodes that may start: effective criticality first
// (vital before low), then the longest remaining estimate-weighted path to a
// sink, then the node id, so that runs are deterministic. It is a binary
// heap of indexes into the graph's Nodes; not safe for concurrent use.
type readyQueue struct {
	items []int
	rank  []int   // effective criticality rank by node index
	rem   []int64 // remaining path (ns) by node index
	ids   []string
}

func newReadyQueue(g *graphs.Graph, a *graphs.Analysis) *readyQueue {
	n := len(g.Nodes)
	q := &readyQueue{rank: make([]int, n), rem: make([]int64, n), ids: make([]string, n)}
	for i, node := range g.Nodes {
		q.ids[i] = node.ID
		if i < len(a.Effective) {
			q.rank[i] = a.Effective[i].Rank()
		} else {
			q.rank[i] = node.Criticality.Rank()
		}
		if i < len(a.Remaining) {
			q.rem[i] = int64(a.Remaining[i])
		}
	}
	return q
}

func (q *readyQueue) Len() int { return len(q.items) }

func (q *readyQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if q.rank[a] != q.rank[b] {
		return q.rank[a] > q.rank[b]
	}
	if q.rem[a] != q.rem[b] {
		return q.rem[a] > q.rem[b]
	}
	return q.ids[a] < q.ids[b]
}

func (q *readyQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }

func (q *readyQueue) Push(x any) { q.items = append(q.items, x.(int)) }

func (q *readyQueue) Pop() any {
	last := len(q.items) - 1
	x := q.items[last]
	q.items = q.items[:last]
	return x
}

func (q *readyQueue) push(i int) { heap.Push(q, i) }

func (q *readyQueue) pop() int { return heap.Pop(q).(int) }
