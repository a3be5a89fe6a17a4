package etcdstate_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// TestEngineRunSameOnBoth runs the same graph through the engine on each
// backend, with a failure, a retry and outputs, and wants the same node
// states and journal shape.
func TestEngineRunSameOnBoth(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: both
defaults: {retries: 1, retry_delay: 1ms}
nodes:
  - {id: net, kind: infrastructure, plugin: noop}
  - {id: db, kind: data, plugin: noop, depends_on: [net]}
  - {id: app, kind: application, plugin: noop, depends_on: [db]}
  - {id: flaky, kind: application, plugin: noop, depends_on: [net]}
  - {id: broken, kind: application, plugin: noop, depends_on: [net], retries: 0}
  - {id: after, kind: application, plugin: noop, depends_on: [broken]}
`)
	results := map[string][]string{}
	for name, st := range backends(t) {
		var flaky atomic.Int32
		h := &enginetest.FakeHost{OnRestore: func(_ context.Context, req step.Request, _ func(step.Event)) (step.Result, error) {
			switch req.NodeID {
			case "flaky":
				if flaky.Add(1) == 1 {
					return step.Result{}, fmt.Errorf("first attempt fails")
				}
			case "broken":
				return step.Result{}, fmt.Errorf("always fails")
			}
			return step.Result{Status: step.Succeeded, Outputs: map[string]string{"node": req.NodeID}}, nil
		}}
		eng := engine.New(st, h, engine.Options{Parallelism: 4})
		res, err := eng.Start(context.Background(), g)
		eng.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Status != state.RunFailed {
			t.Errorf("%s: status %s, want failed", name, res.Status)
		}
		states := enginetest.NodeStates(t, st, res.RunID)
		results[name] = []string{fmt.Sprint(states), fmt.Sprint(len(enginetest.JournalTypes(t, st, res.RunID)))}
		if rep, err := st.Verify(res.RunID); err != nil || !rep.OK {
			t.Errorf("%s: Verify = %+v, %v", name, rep, err)
		}
		n, err := st.Node(res.RunID, "app")
		if err != nil || n.Outputs["node"] != "app" {
			t.Errorf("%s: app = %+v, %v", name, n, err)
		}
	}
	if fmt.Sprint(results["bbolt"]) != fmt.Sprint(results["etcd"]) {
		t.Errorf("bbolt %v\netcd  %v", results["bbolt"], results["etcd"])
	}
}

// TestSizePerNode measures what a succeeded 1,000-node run weighs in etcd:
// the key and value bytes under the prefix, per node (issue 15: ≤ 2 KB),
// and its keys.
func TestSizePerNode(t *testing.T) {
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	g := enginetest.MustGraph(t, t.TempDir(), enginetest.ChainGraph(1000, false))
	eng := engine.New(st, &enginetest.FakeHost{}, engine.Options{Parallelism: 64})
	res, err := eng.Start(context.Background(), g)
	eng.Close()
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run: %v %v", res.Status, err)
	}
	resp, err := rawClient(t).Get(context.Background(), u.Root(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, kv := range resp.Kvs {
		total += len(kv.Key) + len(kv.Value)
	}
	per := float64(total) / 1000
	t.Logf("1,000-node succeeded run: %d keys, %d bytes, %.0f bytes per node (prefix %s)", len(resp.Kvs), total, per, u.Root())
	if per > 2048 {
		t.Errorf("%.0f bytes per node, want at most 2048", per)
	}
	// The records of a transaction share a key, its entries another, and
	// a block goes once all its records are superseded: a key per node
	// would be over 1,000.
	if len(resp.Kvs) > 100 {
		t.Errorf("%d keys for 1,000 nodes, want at most 100", len(resp.Kvs))
	}
}
