package view

import (
	"sort"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// blockers fills BlockedBy of every blocked node with the failed nodes that
// stop it: the failed ancestors reached through nodes that did not fail
// themselves (a failure further up is the cause of that failure, not of
// this block). order lists node indexes dependencies first. Sets are
// shared while a node inherits from a single dependency, which keeps long
// chains linear.
func (m *Model) blockers(order []int) {
	idx := make(map[string]int, len(m.Nodes))
	for i := range m.Nodes {
		idx[m.Nodes[i].ID] = i
	}
	failedAbove := make([]map[string]bool, len(m.Nodes))
	for _, i := range order {
		var set map[string]bool
		shared := false // set is a dependency's own map: copy before adding
		merge := func(from map[string]bool, id string) {
			switch {
			case set == nil && from != nil:
				set, shared = from, true
				return
			case set == nil:
				set = map[string]bool{}
			case shared:
				cp := make(map[string]bool, len(set)+1)
				for k := range set {
					cp[k] = true
				}
				set, shared = cp, false
			}
			for k := range from {
				set[k] = true
			}
			if id != "" {
				set[id] = true
			}
		}
		for _, d := range m.Nodes[i].Deps {
			j := idx[d]
			if m.Nodes[j].State == state.NodeFailed {
				merge(nil, d)
			} else if len(failedAbove[j]) > 0 {
				merge(failedAbove[j], "")
			}
		}
		failedAbove[i] = set
		if m.Nodes[i].State == state.NodeBlocked && len(set) > 0 {
			m.Nodes[i].BlockedBy = sortedKeys(set)
		}
	}
}

// failures lists the root causes: each failed node with its full last
// error and the blocked nodes it stops; blocked nodes without a failed
// ancestor go to BlockedOther.
func (m *Model) failures() {
	blocks := map[string][]string{}
	m.BlockedOther = []string{}
	for i := range m.Nodes {
		n := &m.Nodes[i]
		for _, f := range n.BlockedBy {
			blocks[f] = append(blocks[f], n.ID)
		}
		if n.State == state.NodeBlocked && len(n.BlockedBy) == 0 {
			m.BlockedOther = append(m.BlockedOther, n.ID)
		}
	}
	sort.Strings(m.BlockedOther)
	m.Failures = []Failure{}
	for i := range m.Nodes {
		n := &m.Nodes[i]
		if n.State != state.NodeFailed {
			continue
		}
		f := Failure{Node: n, Error: n.LastError, Blocks: blocks[n.ID]}
		if f.Error == "" && len(n.History) > 0 {
			f.Error = n.History[len(n.History)-1].Error
		}
		sort.Strings(f.Blocks)
		m.Failures = append(m.Failures, f)
	}
	sort.SliceStable(m.Failures, func(a, b int) bool {
		ra, rb := m.Failures[a].Effective.Rank(), m.Failures[b].Effective.Rank()
		if ra != rb {
			return ra > rb
		}
		return m.Failures[a].ID < m.Failures[b].ID
	})
}

// span sets Start and End (every attempt; those going on end at
// AttemptEnd) and Active, the union of the attempts' intervals, a gate's
// open wait for approval left out (nobody works then).
func (m *Model) span() {
	type iv struct{ a, b int64 }
	var ivs []iv
	for i := range m.Nodes {
		n := &m.Nodes[i]
		for _, a := range n.History {
			if a.Started.IsZero() {
				continue
			}
			e := m.AttemptEnd(n, a)
			if e.Before(a.Started) {
				e = a.Started
			}
			if m.Start.IsZero() || a.Started.Before(m.Start) {
				m.Start = a.Started
			}
			if e.After(m.End) {
				m.End = e
			}
			if a.Ended.IsZero() && (n.State == state.NodeWaiting || a.Result == state.NodeWaiting) {
				continue
			}
			ivs = append(ivs, iv{a.Started.UnixNano(), e.UnixNano()})
		}
	}
	sort.Slice(ivs, func(x, y int) bool { return ivs[x].a < ivs[y].a })
	var cur iv
	for k, v := range ivs {
		switch {
		case k == 0:
			cur = v
		case v.a <= cur.b:
			cur.b = max(cur.b, v.b)
		default:
			m.Active += time.Duration(cur.b - cur.a)
			cur = v
		}
	}
	if len(ivs) > 0 {
		m.Active += time.Duration(cur.b - cur.a)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
