package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

func newEngine(t *testing.T, st *state.Store, h step.Host, opts engine.Options) *engine.Engine {
	t.Helper()
	return engine.New(st, h, opts)
}

func TestReadyQueueOrder(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: order
nodes:
  - {id: low-a, kind: data, plugin: noop, criticality: low}
  - {id: norm-short, kind: data, plugin: noop, estimate: 1m}
  - {id: norm-long, kind: data, plugin: noop, estimate: 1h}
  - {id: vital-b, kind: data, plugin: noop, criticality: vital}
  - {id: vital-a, kind: data, plugin: noop, criticality: vital}
  - {id: high, kind: data, plugin: noop, criticality: high}
  - {id: feeds-vital, kind: infrastructure, plugin: noop, criticality: low}
  - {id: vital-c, kind: application, plugin: noop, criticality: vital, depends_on: [feeds-vital]}
`)
	h := &enginetest.FakeHost{}
	res, err := newEngine(t, enginetest.MustStore(t, dir), h, engine.Options{Parallelism: 1}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunSucceeded {
		t.Fatalf("status = %s, want succeeded", res.Status)
	}
	// feeds-vital inherits vital; among vitals, ids break the tie (no
	// estimates), then vital-c once its dependency is done, then by rank.
	want := []string{"feeds-vital", "vital-a", "vital-b", "vital-c", "high", "norm-long", "norm-short", "low-a"}
	if got := h.Restored(); !slices.Equal(got, want) {
		t.Errorf("order:\n got %v\nwant %v", got, want)
	}
}

func TestFailureBlocksDescendantsOnly(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: blocks
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: noop}
  - {id: b, kind: application, plugin: noop, depends_on: [a]}
  - {id: c, kind: application, plugin: noop, depends_on: [b]}
  - {id: x, kind: infrastructure, plugin: noop}
  - {id: y, kind: application, plugin: noop, depends_on: [x]}
`)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "a" {
			return step.Result{Status: step.Failed, Message: "disk on fire"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	st := enginetest.MustStore(t, dir)
	res, err := newEngine(t, st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunFailed {
		t.Errorf("status = %s, want failed", res.Status)
	}
	got := enginetest.NodeStates(t, st, res.RunID)
	want := map[string]state.NodeState{"a": state.NodeFailed, "b": state.NodeBlocked, "c": state.NodeBlocked,
		"x": state.NodeSucceeded, "y": state.NodeSucceeded}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("node %s: state %s, want %s", id, got[id], w)
		}
	}
	rec, _ := st.Node(res.RunID, "a")
	if rec.LastError != "disk on fire" {
		t.Errorf("last error = %q", rec.LastError)
	}
	if len(res.Failed) != 1 || res.Failed[0].ID != "a" || len(res.Blocked) != 2 {
		t.Errorf("result = %+v", res)
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: retries
defaults: {retries: 2, retry_delay: 5ms}
nodes:
  - {id: flaky, kind: infrastructure, plugin: noop}
  - {id: hopeless, kind: infrastructure, plugin: noop, retries: 1}
`)
	var flaky atomic.Int32
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "flaky" && flaky.Add(1) < 3 {
			return step.Result{}, errors.New("connection refused")
		}
		if req.NodeID == "hopeless" {
			return step.Result{Status: step.Failed, Message: fmt.Sprintf("attempt %d no good", req.Attempt)}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	st := enginetest.MustStore(t, dir)
	res, err := newEngine(t, st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id       string
		state    state.NodeState
		attempts int
	}{
		{"flaky", state.NodeSucceeded, 3},
		{"hopeless", state.NodeFailed, 2},
	}
	for _, tc := range tests {
		rec, err := st.Node(res.RunID, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.State != tc.state || rec.Attempts != tc.attempts || len(rec.History) != tc.attempts {
			t.Errorf("%s: state %s attempts %d history %d, want %s %d", tc.id, rec.State, rec.Attempts, len(rec.History), tc.state, tc.attempts)
		}
	}
	retrying := 0
	for _, e := range enginetest.JournalTypes(t, st, res.RunID) {
		if strings.HasPrefix(e, "retrying") {
			retrying++
		}
	}
	if retrying != 3 {
		t.Errorf("retrying entries = %d, want 3", retrying)
	}
}

func TestTimeout(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: timeout
defaults: {retries: 0}
nodes:
  - {id: slow, kind: infrastructure, plugin: noop, timeout: 50ms}
`)
	h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, _ step.Request, _ func(step.Event)) (step.Result, error) {
		<-ctx.Done()
		return step.Result{}, ctx.Err()
	}}
	st := enginetest.MustStore(t, dir)
	res, err := newEngine(t, st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Node(res.RunID, "slow")
	if rec.State != state.NodeFailed || !strings.Contains(rec.LastError, "timed out after 50ms") {
		t.Errorf("state %s, error %q; want failed, timed out", rec.State, rec.LastError)
	}
}

func TestParallelismLimits(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("version: 1\nname: par\nplugins:\n  vendor: {path: ./vendor-plugin, max_parallel: 2}\nnodes:\n")
	for k := 0; k < 12; k++ {
		fmt.Fprintf(&b, "  - {id: n%02d, kind: application, plugin: noop}\n  - {id: v%02d, kind: application, plugin: vendor}\n", k, k)
	}
	g := enginetest.MustGraph(t, dir, b.String())
	h := &enginetest.FakeHost{OnRestore: func(ctx context.Context, _ step.Request, _ func(step.Event)) (step.Result, error) {
		time.Sleep(5 * time.Millisecond)
		return step.Result{Status: step.Succeeded}, nil
	}}
	res, err := newEngine(t, enginetest.MustStore(t, dir), h, engine.Options{Parallelism: 4}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("status %s, err %v", res.Status, err)
	}
	overall, vendor := h.Peak("vendor")
	if overall > 4 || overall < 2 {
		t.Errorf("peak concurrency %d, want 2..4", overall)
	}
	if vendor > 2 || vendor < 1 {
		t.Errorf("peak vendor concurrency %d, want ≤ 2", vendor)
	}
}

func TestOutputsReachDependents(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: outputs
nodes:
  - {id: db, kind: infrastructure, plugin: noop}
  - id: app
    kind: application
    plugin: noop
    depends_on: [db]
    with: {url: "postgres://${nodes.db.outputs.host}:5432/x"}
`)
	h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, emit func(step.Event)) (step.Result, error) {
		if req.NodeID == "db" {
			emit(step.Event{Kind: step.EventOutput, Key: "host", Value: "db1.local"})
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	st := enginetest.MustStore(t, dir)
	res, err := newEngine(t, st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("status %s, err %v", res.Status, err)
	}
	for _, c := range h.Calls() {
		if c.Op == "restore" && c.Req.NodeID == "app" {
			if got := c.Req.Config["url"]; got != "postgres://db1.local:5432/x" {
				t.Errorf("app config url = %v", got)
			}
			if got := c.Req.Inputs["db"]["host"]; got != "db1.local" {
				t.Errorf("app inputs = %v", c.Req.Inputs)
			}
		}
	}
	rec, _ := st.Node(res.RunID, "db")
	if rec.Outputs["host"] != "db1.local" {
		t.Errorf("stored outputs = %v", rec.Outputs)
	}
}

func TestFailFastAndTargets(t *testing.T) {
	src := `version: 1
name: ff
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: noop, criticality: vital}
  - {id: b, kind: infrastructure, plugin: noop}
  - {id: c, kind: application, plugin: noop, depends_on: [b]}
  - {id: d, kind: application, plugin: noop}
`
	failA := func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
		if req.NodeID == "a" {
			return step.Result{Status: step.Failed, Message: "no"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}
	tests := []struct {
		name string
		opts engine.Options
		host *enginetest.FakeHost
		want map[string]state.NodeState
	}{
		{"fail-fast", engine.Options{Parallelism: 1, FailFast: true}, &enginetest.FakeHost{OnRestore: failA},
			map[string]state.NodeState{"a": state.NodeFailed, "b": state.NodePending, "c": state.NodePending, "d": state.NodePending}},
		{"target", engine.Options{Targets: []string{"c"}}, &enginetest.FakeHost{},
			map[string]state.NodeState{"a": state.NodeSkipped, "b": state.NodeSucceeded, "c": state.NodeSucceeded, "d": state.NodeSkipped}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := enginetest.MustStore(t, dir)
			res, err := newEngine(t, st, tc.host, tc.opts).Start(context.Background(), enginetest.MustGraph(t, dir, src))
			if err != nil {
				t.Fatal(err)
			}
			got := enginetest.NodeStates(t, st, res.RunID)
			for id, w := range tc.want {
				if got[id] != w {
					t.Errorf("node %s: %s, want %s", id, got[id], w)
				}
			}
		})
	}
	_, err := newEngine(t, enginetest.MustStore(t, t.TempDir()), &enginetest.FakeHost{}, engine.Options{Targets: []string{"nope"}}).
		Start(context.Background(), enginetest.MustGraph(t, t.TempDir(), src))
	if !errors.Is(err, engine.ErrUnknownTarget) {
		t.Errorf("unknown target: err = %v", err)
	}
}

func TestVerifyCalls(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: verify
plugins:
  vendor: {path: ./vendor-plugin}
nodes:
  - {id: milestone, kind: infrastructure, plugin: noop}
  - {id: script, kind: infrastructure, plugin: exec, with: {restore: [./r.sh]}}
  - {id: checked, kind: infrastructure, plugin: exec, with: {restore: [./r.sh], verify: [./v.sh]}}
  - {id: pacs, kind: application, plugin: vendor}
  - {id: unhealthy, kind: application, plugin: vendor}
`)
	h := &enginetest.FakeHost{OnVerify: func(_ context.Context, req step.Request) (step.Result, error) {
		if req.NodeID == "unhealthy" {
			return step.Result{Status: step.Failed, Message: "index unreadable"}, nil
		}
		return step.Result{Status: step.Succeeded}, nil
	}}
	st := enginetest.MustStore(t, dir)
	res, err := newEngine(t, st, h, engine.Options{}).Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	var verified []string
	for _, c := range h.Calls() {
		if c.Op == "verify" {
			verified = append(verified, c.Req.NodeID)
		}
	}
	slices.Sort(verified)
	if want := []string{"checked", "pacs", "unhealthy"}; !slices.Equal(verified, want) {
		t.Errorf("verified %v, want %v", verified, want)
	}
	rec, _ := st.Node(res.RunID, "unhealthy")
	if rec.State != state.NodeFailed || rec.LastError != "verify: index unreadable" {
		t.Errorf("unhealthy: %s %q", rec.State, rec.LastError)
	}
}
