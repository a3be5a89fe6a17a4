package state

import "sync"

// GroupQueue is the queue of a group commit, the state file's and etcd's
// (etcdstate): callers Push requests from any goroutine; one writer
// goroutine (Serve) takes every request queued since its last commit and
// commits them together, with no timer: a batch is whatever queued while
// the previous one was being committed.
type GroupQueue[R any] struct {
	mu      sync.Mutex // guards pending and closed
	pending []R
	closed  bool
	wake    chan struct{} // capacity 1: work is queued, or the queue closed
	done    chan struct{} // closed once Serve has returned
}

// NewGroupQueue returns an open queue. Serve it on a goroutine of its
// own, or call NoWriter (a read-only store).
func NewGroupQueue[R any]() *GroupQueue[R] {
	return &GroupQueue[R]{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Push queues r and wakes the writer. It reports false, and queues
// nothing, once the queue is closed.
func (q *GroupQueue[R]) Push(r R) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.pending = append(q.pending, r)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *GroupQueue[R]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Serve commits what is queued, a batch at a time in the order it was
// queued, until the queue is closed and nothing is left; then it closes
// Done. Call it once.
func (q *GroupQueue[R]) Serve(commit func(batch []R)) {
	defer close(q.done)
	for range q.wake {
		for {
			q.mu.Lock()
			batch, closed := q.pending, q.closed
			q.pending = nil
			q.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			commit(batch)
		}
	}
}

// NoWriter says the queue will never be served (a read-only store): Done
// is closed at once.
func (q *GroupQueue[R]) NoWriter() { close(q.done) }

// Close refuses any further Push and has Serve return once what is queued
// is committed; it does not wait (see Done). It reports whether the queue
// was closed already.
func (q *GroupQueue[R]) Close() (already bool) {
	q.mu.Lock()
	already, q.closed = q.closed, true
	q.mu.Unlock()
	if !already {
		q.signal()
	}
	return already
}

// Closed reports whether Close was called.
func (q *GroupQueue[R]) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Done is closed once Serve has returned (or NoWriter was called).
func (q *GroupQueue[R]) Done() <-chan struct{} { return q.done }

// Len is the number of requests waiting for the writer.
func (q *GroupQueue[R]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
