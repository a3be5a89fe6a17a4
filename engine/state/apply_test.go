package state

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
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
