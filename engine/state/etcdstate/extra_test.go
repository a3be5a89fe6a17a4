package etcdstate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// doneCall is what an Extra's Done was called with.
type doneCall struct {
	n     int
	rev   int64
	resps []*etcdserverpb.ResponseOp
	err   error
}

func recordDone(got *doneCall) func(int64, []*etcdserverpb.ResponseOp, error) {
	return func(rev int64, resps []*etcdserverpb.ResponseOp, err error) {
		got.n++
		got.rev, got.resps, got.err = rev, resps, err
	}
}

// TestApplyWithCommitsExtrasWithLastChange: a caller's own writes go in
// the transaction of its last change, never before it, even when the
// changes take several transactions; Done gets their responses, a nested
// transaction's outcome among them.
func TestApplyWithCommitsExtrasWithLastChange(t *testing.T) {
	cli := rawClient(t)
	for _, maxOps := range []int{0, 8} {
		t.Run(fmt.Sprintf("max-ops-%d", maxOps), func(t *testing.T) {
			opts := etcdstate.Options{MaxTxnOps: maxOps}
			if maxOps > 0 {
				opts.MaxTxnBytes = 8 << 10 // 200 entries of about 300 bytes: several transactions
			}
			st, u := mustEtcd(t, nil, opts)
			createRun(t, st, "r1", 100)
			before := st.Stats().Commits
			held, lost := u.Key("x/held"), u.Key("x/lost")
			var got doneCall
			x := &etcdstate.Extra{
				Ops: []clientv3.Op{
					clientv3.OpPut(held, "1"),
					clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Version(u.Key("x/none")), ">", 0)},
						[]clientv3.Op{clientv3.OpPut(lost, "1")}, nil),
				},
				Bytes: 16,
				Done:  recordDone(&got),
			}
			if err := st.ApplyWith(context.Background(), x, bigChanges(st, "r1", 100)...); err != nil {
				t.Fatal(err)
			}
			commits := st.Stats().Commits - before
			if maxOps == 0 && commits != 1 || maxOps == 8 && commits < 5 {
				t.Errorf("%d commits", commits)
			}
			if got.n != 1 || got.err != nil || len(got.resps) != 2 {
				t.Fatalf("Done called %d times, with %d responses, err %v", got.n, len(got.resps), got.err)
			}
			if got.resps[1].GetResponseTxn() == nil || got.resps[1].GetResponseTxn().Succeeded {
				t.Errorf("nested transaction's response: %v", got.resps[1])
			}
			resp, err := cli.Get(context.Background(), held)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("extra put not written: %v", err)
			}
			head, err := cli.Get(context.Background(), u.Key("runs/head/r1"))
			if err != nil || len(head.Kvs) != 1 {
				t.Fatal(err)
			}
			if resp.Kvs[0].ModRevision != head.Kvs[0].ModRevision || got.rev != head.Kvs[0].ModRevision {
				t.Errorf("extra written at revision %d, the last change at %d, Done told %d", resp.Kvs[0].ModRevision, head.Kvs[0].ModRevision, got.rev)
			}
			if r, _ := cli.Get(context.Background(), lost); len(r.Kvs) != 0 {
				t.Error("the nested transaction's Then ran")
			}
			if rep, err := st.Verify("r1"); err != nil || !rep.OK {
				t.Errorf("Verify = %+v, %v", rep, err)
			}
		})
	}
}

// TestApplyWithFailureCallsDone: when the changes are not written, the
// extras are not either, and Done says why, once.
func TestApplyWithFailureCallsDone(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	key := u.Key("x/never")
	change := state.Change{RunID: "nosuchrun", Entry: &state.Entry{Type: state.EntryStarted, NodeID: "a"},
		Node: &state.NodeRecord{ID: "a", State: state.NodeRunning}}
	var got doneCall
	x := &etcdstate.Extra{Ops: []clientv3.Op{clientv3.OpPut(key, "1")}, Done: recordDone(&got)}
	err := st.ApplyWith(context.Background(), x, change)
	if !errors.Is(err, state.ErrRunNotFound) || got.n != 1 || !errors.Is(got.err, state.ErrRunNotFound) {
		t.Fatalf("ApplyWith = %v, Done called %d times with %v", err, got.n, got.err)
	}
	if r, _ := cli.Get(context.Background(), key); len(r.Kvs) != 0 {
		t.Error("extra written without its change")
	}
	got = doneCall{}
	x = &etcdstate.Extra{Ops: []clientv3.Op{clientv3.OpPut(key, "1")}, Done: recordDone(&got)}
	if err := st.ApplyWith(context.Background(), x); !errors.Is(err, state.ErrInvalidChange) || got.n != 1 {
		t.Errorf("ApplyWith without changes = %v, Done called %d times", err, got.n)
	}
	if err := st.ApplyWith(context.Background(), "ops", change); !errors.Is(err, state.ErrInvalidChange) {
		t.Errorf("ApplyWith of a string = %v", err)
	}
}

// TestApplyWithWaitsForReady: the caller may still be building its writes
// (their number given) while the writer builds its own; what is sent is
// what they are once Ready is closed, in the transaction of the change.
func TestApplyWithWaitsForReady(t *testing.T) {
	cli := rawClient(t)
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	createRun(t, st, "r1", 10)
	key := u.Key("x/late")
	ops := make([]clientv3.Op, 1)
	ready := make(chan struct{})
	var got doneCall
	x := &etcdstate.Extra{Ops: ops, Bytes: 64, Ready: ready, Done: recordDone(&got)}
	go func() {
		time.Sleep(100 * time.Millisecond) // the writer is there before
		ops[0] = clientv3.OpPut(key, "built late")
		close(ready)
	}()
	if err := st.ApplyWith(context.Background(), x, bigChanges(st, "r1", 10)...); err != nil {
		t.Fatal(err)
	}
	if got.n != 1 || got.err != nil || len(got.resps) != 1 {
		t.Fatalf("Done called %d times, with %d responses, err %v", got.n, len(got.resps), got.err)
	}
	resp, err := cli.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "built late" {
		t.Fatalf("the write built before Ready: %v, %v", resp, err)
	}
	if resp.Kvs[0].ModRevision != got.rev {
		t.Errorf("written at revision %d, the change at %d", resp.Kvs[0].ModRevision, got.rev)
	}
}
