package cluster

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestWriterLostAnswerNotAppliedTwice: a transaction of the dispatcher's
// writer that committed but whose answer was lost (a member that hung,
// a client that moved to the new leader and gave its requests up) is not
// applied again by the next attempt: an item put once (sent twice, an item
// claimed meanwhile would be put back unclaimed, and run by two agents),
// an offer batch written once (sent twice, its calls would be offered
// twice), and each write answered as the first attempt committed it. The
// markers are deleted afterwards. A writer without markers, as before,
// writes twice: what this guards against.
func TestWriterLostAnswerNotAppliedTwice(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	ctx := context.Background()
	k := NewKeys("/once/")
	if _, err := cli.Put(ctx, "/once/taken", "x"); err != nil {
		t.Fatal(err)
	}
	// Each offer a group of its own: the first's guard holds, the
	// second's does not (as an agent whose lease changed).
	group := func(reqs []*wreq) []offerGroup {
		var gs []offerGroup
		for i, r := range reqs {
			key := "/once/offer/" + r.node
			guard := "/once/free"
			if i == 1 {
				guard = "/once/taken"
			}
			gs = append(gs, offerGroup{key: key, offers: []*wreq{r},
				cmps: []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(guard), "=", 0)},
				then: []clientv3.Op{clientv3.OpPut(key, "calls of "+r.node)}})
		}
		return gs
	}
	offer := func(node string) *wreq {
		return &wreq{ctx: ctx, node: node, done: make(chan wres, 1),
			offer: &offer{rw: &runWork{run: "r"}, la: &liveAgent{key: "/once/agents/a", lease: 1}}}
	}
	for _, marked := range []bool{true, false} {
		marks := ""
		if marked {
			marks = k.Writes() + writerID() + "/"
		}
		w := newWriter(cli, zap.NewNop(), 0, group, marks)
		lost := 0
		w.lose = func() bool { lost++; return lost == 1 } // the first answer only
		item := "/once/item/" + marks
		put := &wreq{ctx: ctx, node: "n0", ops: []clientv3.Op{clientv3.OpPut(item, "unclaimed")}, done: make(chan wres, 1)}
		o1, o2 := offer("n1"+marks), offer("n2"+marks)
		w.commit([]*wreq{put, o1, o2})
		w.close()
		if lost < 2 {
			t.Fatalf("marked %v: %d commits, want the first (its answer lost) and another", marked, lost)
		}
		got, err := cli.Get(ctx, item)
		if err != nil || len(got.Kvs) != 1 {
			t.Fatalf("marked %v: item: %v %v", marked, got, err)
		}
		if !marked {
			if v := got.Kvs[0].Version; v != 2 {
				t.Fatalf("without markers: the item written %d times, want 2 (the fault this test guards against)", v)
			}
			continue
		}
		if v := got.Kvs[0].Version; v != 1 {
			t.Errorf("the item written %d times, want once", v)
		}
		pr := <-put.done
		if pr.err != nil || pr.rev != got.Kvs[0].ModRevision {
			t.Errorf("the item's answer: %+v, want revision %d (the attempt that committed)", pr, got.Kvs[0].ModRevision)
		}
		r1, r2 := <-o1.done, <-o2.done
		ok1, err := cli.Get(ctx, "/once/offer/"+o1.node)
		if err != nil || len(ok1.Kvs) != 1 || ok1.Kvs[0].Version != 1 {
			t.Fatalf("the first offer batch: %v %v, want written once", ok1.Kvs, err)
		}
		if r1.err != nil || !r1.held || r1.key != "/once/offer/"+o1.node || r1.rev != ok1.Kvs[0].ModRevision {
			t.Errorf("the first offer's answer: %+v, want held at revision %d", r1, ok1.Kvs[0].ModRevision)
		}
		if r2.err != nil || r2.held || r2.key != "" {
			t.Errorf("the second offer's answer: %+v, want not held (its guard failed)", r2)
		}
		if n, _ := cli.Get(ctx, "/once/offer/"+o2.node); len(n.Kvs) != 0 {
			t.Errorf("the second offer batch was written: %v", n.Kvs)
		}
		left, err := cli.Get(ctx, k.Writes(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil || len(left.Kvs) != 0 {
			t.Errorf("markers left after the writer closed: %v %v", left.Kvs, err)
		}
	}
}

// TestWriterIdempotentUnmarked: a transaction of deletes only writes no
// marker (nothing to guard: sent twice, it deletes the same keys).
func TestWriterIdempotentUnmarked(t *testing.T) {
	w := &writer{marks: "/m/w/"}
	del := &wreq{ops: []clientv3.Op{clientv3.OpDelete("/x", clientv3.WithPrefix())}}
	if m := w.markOf([]*wreq{del}); m != "" {
		t.Errorf("deletes only: marker %q, want none", m)
	}
	put := &wreq{ops: []clientv3.Op{clientv3.OpPut("/x", "v")}}
	if m := w.markOf([]*wreq{del, put}); m != "/m/w/1/" {
		t.Errorf("a put: marker %q, want /m/w/1/", m)
	}
	off := &wreq{offer: &offer{}}
	if m := w.markOf([]*wreq{off}); m != "/m/w/2/" {
		t.Errorf("an offer: marker %q, want /m/w/2/", m)
	}
}

// TestWriterCancelledWriteFreesItsNode: a write whose caller gave up
// before its transaction went is dropped from it, and its node is free for
// the next write. Before, dropping it shifted the batch the writer's loop
// frees afterwards: the node of the dropped write stayed busy, and every
// later write of that node (the call's withdrawal, the node's next
// attempt) waited forever.
func TestWriterCancelledWriteFreesItsNode(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	w := newWriter(cli, zap.NewNop(), 0, nil, NewKeys("/busy/").Writes()+writerID()+"/")
	defer w.close()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	w.expect(2) // both in one transaction
	if _, err := w.do(gone, "n1", clientv3.OpPut("/busy/n1", "first")); err == nil {
		t.Fatal("a write whose context is done: no error")
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if _, err := w.do(ctx, "n2", clientv3.OpPut("/busy/n2", "v")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.do(ctx, "n1", clientv3.OpPut("/busy/n1", "second")); err != nil {
		t.Fatalf("n1's next write: %v (its node left busy)", err)
	}
}
