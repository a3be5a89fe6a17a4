package runsession_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/runsession"
)

const graphSrc = `version: 1
name: signals
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
  - {id: b, kind: application, plugin: noop, depends_on: [a]}
`

// mustSession starts a session whose step "a" tells started when it runs
// and then waits for release or for its context to end.
func mustSession(t *testing.T) (*runsession.Session, *state.Store, *graphs.Graph, chan struct{}, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, graphSrc)
	st := enginetest.MustStore(t, dir)
	started, release := make(chan struct{}, 1), make(chan struct{})
	h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "a" {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return step.Result{}, ctx.Err()
			}
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	opts := engine.Options{Parallelism: 1, NewHost: func(*graphs.Graph, *zap.Logger) (step.Host, error) { return h, nil }}
	s, err := runsession.Start(st, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, st, g, started, release
}

func nodeStates(t *testing.T, st *state.Store, runID string) map[string]state.NodeState {
	t.Helper()
	recs, err := st.Nodes(runID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]state.NodeState{}
	for _, r := range recs {
		out[r.ID] = r.State
	}
	return out
}

// TestFirstSignalDrains: the first SIGINT lets the running step finish and
// starts nothing more; the control socket answers during the run.
func TestFirstSignalDrains(t *testing.T) {
	s, st, g, started, release := mustSession(t)
	go func() {
		<-started
		c, err := control.Dial(control.SocketPath(st.Path()))
		if err != nil {
			t.Errorf("control socket during the run: %v", err)
		} else if live, err := c.Live(); err != nil || live == "" {
			t.Errorf("Live = %q, %v; want the run", live, err)
		}
		syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		time.Sleep(100 * time.Millisecond) // the signal is taken before a finishes
		close(release)
	}()
	res, err := s.Do(context.Background(), func(ctx context.Context) (engine.Result, error) { return s.Engine.Start(ctx, g) })
	if err != nil || res.Status != state.RunInterrupted {
		t.Fatalf("run after one SIGINT: %+v, %v; want interrupted", res, err)
	}
	if got := nodeStates(t, st, res.RunID); got["a"] != state.NodeSucceeded || got["b"] != state.NodePending {
		t.Errorf("states %v: want a finished and b never started", got)
	}
}

// TestSecondSignalCancels: a second SIGINT cancels the running step.
func TestSecondSignalCancels(t *testing.T) {
	s, st, g, started, _ := mustSession(t)
	go func() {
		<-started
		syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		time.Sleep(100 * time.Millisecond)
		syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	}()
	done := make(chan struct{})
	var res engine.Result
	var err error
	go func() {
		defer close(done)
		res, err = s.Do(context.Background(), func(ctx context.Context) (engine.Result, error) { return s.Engine.Start(ctx, g) })
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the second SIGINT did not cancel the running step")
	}
	if err != nil || res.Status != state.RunInterrupted {
		t.Fatalf("run after two SIGINTs: %+v, %v; want interrupted", res, err)
	}
	if got := nodeStates(t, st, res.RunID); got["a"] != state.NodePending || got["b"] != state.NodePending {
		t.Errorf("states %v: want a cancelled back to pending, b never started", got)
	}
}

// TestStopCancels: Stop, from another goroutine, ends the run as two
// SIGINTs do: the running step is cancelled, nothing more starts, and the
// run ends interrupted.
func TestStopCancels(t *testing.T) {
	s, st, g, started, _ := mustSession(t)
	go func() {
		<-started
		s.Stop("test")
		s.Stop("twice does nothing more")
	}()
	done := make(chan struct{})
	var res engine.Result
	var err error
	go func() {
		defer close(done)
		res, err = s.Do(context.Background(), func(ctx context.Context) (engine.Result, error) { return s.Engine.Start(ctx, g) })
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not cancel the running step")
	}
	if err != nil || res.Status != state.RunInterrupted {
		t.Fatalf("run after Stop: %+v, %v; want interrupted", res, err)
	}
	if got := nodeStates(t, st, res.RunID); got["a"] != state.NodePending || got["b"] != state.NodePending {
		t.Errorf("states %v: want a cancelled back to pending, b never started", got)
	}
}
