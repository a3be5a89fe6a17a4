package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func TestApplyConcurrent(t *testing.T) {
	const writers, each = 100, 20
	ctx := context.Background()
	s := mustOpen(t, Options{}) // durable: the batching comes from fdatasync time
	mustRun(t, s, "r1", 0)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%03d-%02d", w, i)
				errs <- s.Apply(ctx, Change{RunID: "r1",
					Node:  &NodeRecord{ID: id, State: NodeSucceeded, Attempts: 1},
					Entry: &Entry{Type: "node-succeeded", NodeID: id, State: NodeSucceeded, Attempt: 1}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := s.Nodes("r1")
	if err != nil || len(nodes) != writers*each {
		t.Fatalf("Nodes = %d records, %v; want %d", len(nodes), err, writers*each)
	}
	seen := map[string]bool{}
	err = s.Journal("r1", 1, func(e Entry) error { seen[e.NodeID] = true; return nil })
	if err != nil || len(seen) != writers*each {
		t.Errorf("journal names %d nodes, %v; want %d", len(seen), err, writers*each)
	}
	rep, err := s.Verify("r1")
	if err != nil || !rep.OK || rep.Entries != writers*each+1 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
	st := s.Stats()
	t.Logf("%d changes in %d commits (%.1f a commit)", st.Changes, st.Commits, float64(st.Changes)/float64(st.Commits))
	if st.Changes != writers*each || st.Applies != writers*each {
		t.Errorf("stats = %+v, want %d changes and applies", st, writers*each)
	}
	if st.Commits*4 > st.Changes {
		t.Errorf("%d commits for %d changes: want at most a quarter (group commit)", st.Commits, st.Changes)
	}
}

func TestApplyAcrossRuns(t *testing.T) {
	// One batch that spans runs keeps each run's chain whole.
	ctx := context.Background()
	s := mustOpen(t, Options{NoSync: true})
	runs := []string{"a", "b", "c"}
	for _, r := range runs {
		mustRun(t, s, r, 1)
	}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			r := runs[i%3]
			if err := s.Apply(ctx, Change{RunID: r, Entry: &Entry{Type: "tick", Message: strconv.Itoa(i)}},
				Change{RunID: r, Entry: &Entry{Type: "tock"}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, r := range runs {
		rep, err := s.Verify(r)
		if err != nil || !rep.OK || rep.Entries != 41 {
			t.Errorf("run %s: Verify = %+v, %v; want 41 entries, OK", r, rep, err)
		}
	}
}

func TestApplyCanceledWhileWaiting(t *testing.T) {
	// A caller that stops waiting gets ctx.Err(); its change may still land.
	s := mustOpen(t, Options{})
	mustRun(t, s, "r1", 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	err := s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{Type: "x"}})
	if err != context.DeadlineExceeded {
		t.Errorf("Apply with expired ctx = %v, want DeadlineExceeded", err)
	}
	if rep, err := s.Verify("r1"); err != nil || !rep.OK {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

func TestCloseCommitsQueued(t *testing.T) {
	s := mustOpen(t, Options{NoSync: true})
	mustRun(t, s, "r1", 0)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Apply(context.Background(), Change{RunID: "r1", Entry: &Entry{Type: "x"}}) })
	}
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch err {
		case nil:
			ok++
		case ErrClosed:
		default:
			t.Errorf("Apply during Close: %v, want nil or ErrClosed", err)
		}
	}
	s2, err := Open(s.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rep, err := s2.Verify("r1")
	if err != nil || !rep.OK || rep.Entries != ok+1 {
		t.Errorf("Verify = %+v, %v; want %d entries (every Apply that returned nil)", rep, err, ok+1)
	}
}

// TestCommitFailure makes one batch fail (the file may not grow past
// MaxSize): every caller of that batch gets the error, none of its changes
// is stored, and the store goes on.
func TestCommitFailure(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, Options{NoSync: true})
	mustRun(t, s, "r1", 0)
	info, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	// Hold bbolt's writer lock so that the writer is busy with A while B
	// and C queue up into one batch.
	held, release := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bolt.Tx) error {
		close(held)
		<-release
		s.db.MaxSize = int(info.Size()) // under bbolt's writer lock
		return nil
	})
	<-held
	errA := make(chan error, 1)
	go func() { errA <- s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{Type: "a"}}) }()
	waitQueue(t, s, 1, 0) // A queued, then taken by the writer
	errB, errC := make(chan error, 1), make(chan error, 1)
	go func() {
		errB <- s.Apply(ctx, Change{RunID: "r1", Snapshot: make([]byte, 8<<20), Entry: &Entry{Type: "b"}})
	}()
	go func() {
		errC <- s.Apply(ctx, Change{RunID: "r1", Node: &NodeRecord{ID: "c"}, Entry: &Entry{Type: "c"}})
	}()
	waitQueue(t, s, 3, 2)
	close(release)
	if err := <-errA; err != nil {
		t.Errorf("A: %v", err)
	}
	b, c := <-errB, <-errC
	if !errors.Is(b, bolterrors.ErrMaxSizeReached) || c == nil || b.Error() != c.Error() {
		t.Errorf("B, C = %v, %v; want the same ErrMaxSizeReached", b, c)
	}
	if st := s.Stats(); st.Failed != 2 {
		t.Errorf("stats = %+v, want 2 failed", st)
	}
	_ = s.db.Update(func(*bolt.Tx) error { s.db.MaxSize = 0; return nil })
	if _, err := s.Node("r1", "c"); !errors.Is(err, ErrNodeNotFound) {
		t.Errorf("node of the failed batch: %v, want ErrNodeNotFound", err)
	}
	if err := s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{Type: "d"}}); err != nil {
		t.Fatal(err)
	}
	var types []string
	_ = s.Journal("r1", 0, func(e Entry) error { types = append(types, string(e.Type)); return nil })
	rep, err := s.Verify("r1")
	if err != nil || !rep.OK || !reflect.DeepEqual(types, []string{"run-created", "a", "d"}) {
		t.Errorf("journal %v, Verify = %+v, %v; want run-created a d, OK", types, rep, err)
	}
}

// waitQueue waits until queued requests have been queued in all and
// pending of them wait for the writer.
func waitQueue(t *testing.T, s *Store, queued uint64, pending int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n := s.queue.Len()
		if s.stats.queued.Load() == queued && n == pending {
			return
		}
	}
	t.Fatalf("the queue never held %d of %d requests", pending, queued)
}
