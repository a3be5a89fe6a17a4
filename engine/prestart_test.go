package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// prestartHost takes every call the engine offers to start with its
// commit, as the cluster's dispatcher does for agents.
type prestartHost struct {
	*enginetest.FakeHost
	mu   sync.Mutex
	took []string
}

func (h *prestartHost) Prestart(reqs []step.Request, timeouts []time.Duration) (any, []bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	taken := make([]bool, len(reqs))
	for i, r := range reqs {
		h.took = append(h.took, r.NodeID)
		taken[i] = true
	}
	return "offers", taken
}

// gatedStore holds its first commit that carries a host's writes until
// released, as a slow etcd would.
type gatedStore struct {
	*state.Store
	entered, release chan struct{}
	once             sync.Once
	extras           []any
}

func (s *gatedStore) ApplyWith(ctx context.Context, extra any, changes ...state.Change) error {
	s.extras = append(s.extras, extra)
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.Store.Apply(ctx, changes...)
}

// TestPrestartedStartWhileStopping: steps whose calls went with the commit
// that records them running start once it is durable even if the run
// began to stop meanwhile (their calls are out: put back to pending, they
// would run unrecorded); the steps that were not started do not.
func TestPrestartedStartWhileStopping(t *testing.T) {
	dir := t.TempDir()
	st := &gatedStore{Store: enginetest.MustStore(t, dir), entered: make(chan struct{}), release: make(chan struct{})}
	g := enginetest.MustGraph(t, dir, `version: 1
name: pre
nodes:
  - {id: a, kind: application, plugin: noop}
  - {id: b, kind: application, plugin: noop}
  - {id: c, kind: application, plugin: noop, depends_on: [a]}
`)
	h := &prestartHost{FakeHost: &enginetest.FakeHost{}}
	e := engine.New(st, h, engine.Options{Parallelism: 4})
	done := make(chan engine.Result, 1)
	go func() {
		res, err := e.Start(context.Background(), g)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case <-st.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no commit carried the host's writes")
	}
	e.Drain()
	time.Sleep(100 * time.Millisecond) // the loop takes the drain while the commit waits
	close(st.release)
	res := <-done
	if res.Status != state.RunInterrupted {
		t.Errorf("status %s, want interrupted", res.Status)
	}
	h.mu.Lock()
	took := slices.Sorted(slices.Values(h.took))
	h.mu.Unlock()
	if !slices.Equal(took, []string{"a", "b"}) || len(st.extras) == 0 || st.extras[0] != "offers" {
		t.Fatalf("prestarted %v, extras %v: want a and b with the first commit", took, st.extras)
	}
	if got := slices.Sorted(slices.Values(h.Restored())); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("restored %v, want a and b (their calls went with their start)", got)
	}
	states := enginetest.NodeStates(t, st, res.RunID)
	if states["a"] != state.NodeSucceeded || states["b"] != state.NodeSucceeded || states["c"] != state.NodePending {
		t.Errorf("states %v, want a and b succeeded, c pending", states)
	}
}
