package engine

import (
	"runtime"
	"time"
)

// Batching the step calls of short steps: the steps the loop starts
// together reach their plugin in one message, and the results that come
// back together are taken together, so that the steps started in their
// place go together again (engine/host and plugins/sdk send what is ready
// in one message each way; a message costs both processes far more than a
// frame in it).

// takeRunnable takes the results already sent, and those of the steps
// whose goroutines are about to send theirs: the answers a plugin sends in
// one message wake their callers together, and the loop, woken by the
// first, yields to the others so that the steps it starts in their place
// start together too (engine/host sends them in one message). It stops at
// the first yield that brings nothing.
func (r *runner) takeRunnable() {
	r.takeSent()
	for range maxYields {
		if r.inflight == 0 {
			return
		}
		runtime.Gosched()
		if !r.takeSent() {
			return
		}
	}
}

// takeSent takes the results already sent; false when there were none.
func (r *runner) takeSent() bool {
	got := false
	for r.inflight > 0 {
		select {
		case res := <-r.results:
			r.finish(res)
			got = true
			continue
		default:
		}
		break
	}
	return got
}

// maxYields bounds takeRunnable's yields.
const maxYields = 8

// callBatcher is a host that sends the calls started together to a plugin
// in one message when told how many are coming (engine/host's Host).
type callBatcher interface {
	Expect(plugin string, n int)
}

// announce tells the host how many of nodes' steps (about to start) go
// to each plugin, when it wants to know: those whose first call is
// Restore, made at once by their goroutine (not a Check first, nor a
// restore point to choose).
func (r *runner) announce(nodes []int) {
	if len(nodes) < 2 || r.converging() {
		return
	}
	b, ok := r.e.hostOf(r.g).(callBatcher)
	if !ok {
		return
	}
	type count struct {
		plugin string
		n      int
	}
	var counts []count
next:
	for _, i := range nodes {
		node := r.g.Nodes[i]
		if node.RestorePoints != nil {
			continue
		}
		for k := range counts {
			if counts[k].plugin == node.Plugin {
				counts[k].n++
				continue next
			}
		}
		counts = append(counts, count{node.Plugin, 1})
	}
	for _, c := range counts {
		b.Expect(c.plugin, c.n)
	}
}

// startStep runs step l in a goroutine that has run one before, if one is
// idle, else in a new one. A new goroutine's stack grows on its way
// through the host and gRPC (copied two or three times): reusing them
// spares that copy on every short step.
func (r *runner) startStep(l launch) {
	select {
	case r.spare <- l:
	default:
		go r.stepWorker(l)
	}
}

// workerIdle is how long a step goroutine waits for another step.
const workerIdle = time.Second

func (r *runner) stepWorker(l launch) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		r.execute(l)
		t.Reset(workerIdle)
		select {
		case l = <-r.spare:
		case <-t.C:
			return
		case <-r.done:
			return
		}
	}
}

// arriver is a host that hands the results of calls started together to
// their callers at once, and says how many are on their way
// (internal/cluster's Dispatcher: a dependency level's results through
// agents). The step goroutines wake one by one; on a busy machine the
// loop would commit the first ones alone, and the level would go on in
// waves a commit apart, each paying a commit and an offer.
type arriver interface {
	Arriving() int
}

// arrivalWait bounds the wait for results on their way.
const arrivalWait = 5 * time.Millisecond

// arriving reports whether the host says results are on their way.
func (r *runner) arriving() bool {
	a, ok := r.e.hostOf(r.g).(arriver)
	return ok && a.Arriving() > 0
}
