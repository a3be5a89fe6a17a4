package state

import (
	"slices"
	"testing"
	"time"
)

// TestGroupQueue: what is queued while a batch commits goes in the next
// batch, in order; Close lets the writer commit what is queued and return;
// a Push after Close queues nothing.
func TestGroupQueue(t *testing.T) {
	q := NewGroupQueue[int]()
	first, release := make(chan struct{}), make(chan struct{})
	var batches [][]int
	served := make(chan struct{})
	go func() {
		defer close(served)
		q.Serve(func(b []int) {
			batches = append(batches, slices.Clone(b))
			if len(batches) == 1 {
				close(first)
				<-release // the next requests queue meanwhile
			}
		})
	}()
	if !q.Push(0) {
		t.Fatal("Push refused on an open queue")
	}
	<-first
	for i := 1; i <= 5; i++ {
		q.Push(i)
	}
	if n := q.Len(); n != 5 {
		t.Fatalf("Len = %d while the writer is busy, want 5", n)
	}
	if q.Close() {
		t.Fatal("Close said the queue was closed already")
	}
	if q.Push(6) {
		t.Fatal("Push after Close was accepted")
	}
	close(release)
	select {
	case <-q.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	<-served
	if want := [][]int{{0}, {1, 2, 3, 4, 5}}; !slices.EqualFunc(batches, want, slices.Equal[[]int]) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	if !q.Close() || !q.Closed() {
		t.Fatal("a second Close did not say the queue was closed")
	}
}

// TestGroupQueueNoWriter: a queue never served (a read-only store) is done
// at once.
func TestGroupQueueNoWriter(t *testing.T) {
	q := NewGroupQueue[int]()
	q.NoWriter()
	select {
	case <-q.Done():
	default:
		t.Fatal("Done not closed after NoWriter")
	}
}
