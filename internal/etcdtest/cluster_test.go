package etcdtest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestQuorumLostAndBack checks the harness does what the state backend's
// tests rely on: a 3-member cluster answers, refuses writes once two members
// are down, and accepts them again with the data kept when they come back.
func TestQuorumLostAndBack(t *testing.T) {
	c := Start(t, 3)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	c.Stop(2)
	// A member that led when the others stopped would log the write and
	// commit it once they are back: let it step down first (check quorum,
	// after an election timeout of 500 ms).
	time.Sleep(1500 * time.Millisecond)
	short, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	if _, err := cli.Put(short, "k", "v2"); err == nil {
		t.Fatal("a write succeeded with one member of three")
	}
	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(30 * time.Second)
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("after restart: %v", resp.Kvs)
	}
}

// TestBootRetriesTakenPorts: a port taken between being chosen and being
// bound (another process got it first) does not fail the cluster's start:
// the first choice here is a port a listener holds.
func TestBootRetriesTakenPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	calls := 0
	pickAddr = func() (string, error) {
		calls++
		if calls == 1 {
			return l.Addr().String(), nil
		}
		return freeAddrErr()
	}
	defer func() { pickAddr = freeAddrErr }()
	c := Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Client(t).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if calls < 4 {
		t.Fatalf("%d addresses chosen: the taken port was not retried", calls)
	}
}

// recordTB records the errors a cluster reports instead of failing.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestMemberDeathReported: a member that exits without being stopped (here
// killed behind the harness's back, as a crashing etcd would exit) fails
// the test with the end of its log, and never takes the test process with
// it; a member stopped on purpose is not reported.
func TestMemberDeathReported(t *testing.T) {
	rec := &recordTB{TB: t}
	c := Start(rec, 3)
	c.Stop(2) // on purpose: not news
	c.mu.Lock()
	p, exited := c.members[1].proc, c.members[1].exited
	c.mu.Unlock()
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	c.closeAndReport()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "etcd member m1 exited by itself") ||
		!strings.Contains(rec.errs[0], "etcdtest: m1 starting (new)") {
		t.Fatalf("reported: %q", rec.errs)
	}
}

// TestStartWithFlags: Options.Flags reach every member, at the first start
// and at a restart: a member started with --max-txn-ops=4 refuses a
// transaction of five puts and takes one of four.
func TestStartWithFlags(t *testing.T) {
	c := StartWith(t, 1, Options{Flags: []string{"--max-txn-ops=4"}})
	cli := c.Client(t)
	txn := func(n int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("k%d", i), "v")
		}
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		return err
	}
	for round := range 2 {
		if err := txn(5); err == nil || !strings.Contains(err.Error(), "too many operations") {
			t.Errorf("round %d: a transaction of 5 puts with --max-txn-ops=4: %v, want refused", round, err)
		}
		if err := txn(4); err != nil {
			t.Errorf("round %d: a transaction of 4 puts: %v", round, err)
		}
		c.Stop(0)
		c.Restart(0)
		c.WaitHealthy(30 * time.Second)
	}
}
