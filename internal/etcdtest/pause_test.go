package etcdtest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberClient returns a client of member i alone, closed when the test
// ends.
func memberClient(t *testing.T, c *Cluster, i int) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoints()[i]}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// readLocal reads key from member i's own copy (a serializable read, which
// needs no leader) within limit.
func readLocal(cli *clientv3.Client, key string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// waitLocal waits up to limit for member cli to hold want at key.
func waitLocal(t *testing.T, cli *clientv3.Client, name, key, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := readLocal(cli, key, time.Second)
		if err == nil && got == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s holds %q at %s after %s (%v), want %q", name, got, key, limit, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func put(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatalf("put %s=%s: %v", key, val, err)
	}
}

// TestPauseResume: a paused member still accepts TCP connections but
// answers nothing; the others go on without it (writing, and electing a
// leader when it led); resumed, it catches up on what it missed and a
// paused leader no longer leads.
func TestPauseResume(t *testing.T) {
	c := Start(t, 3)
	leader := c.Leader(10 * time.Second)
	f := (leader + 1) % 3
	other := (leader + 2) % 3
	clis := []*clientv3.Client{memberClient(t, c, 0), memberClient(t, c, 1), memberClient(t, c, 2)}
	put(t, clis[leader], "k", "0")

	// A follower hangs: connections to it are accepted, requests to it
	// get no answer; writes through the leader go on.
	c.Pause(f)
	if !c.Paused(f) {
		t.Fatal("Paused is false after Pause")
	}
	conn, err := net.DialTimeout("tcp", c.Endpoints()[f], time.Second)
	if err != nil {
		t.Fatalf("connect to the paused member: %v (a hung member still accepts)", err)
	}
	conn.Close()
	if _, err := readLocal(clis[f], "k", time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read from the paused member: %v, want no answer within its timeout", err)
	}
	put(t, clis[leader], "k", "1")
	c.Resume(f)
	if c.Paused(f) {
		t.Fatal("Paused is true after Resume")
	}
	took := waitLocal(t, clis[f], "the resumed follower", "k", "1", 10*time.Second)
	t.Logf("the follower caught up %s after its resume", took.Round(time.Millisecond))

	// The leader hangs: the two others elect one of them.
	c.Pause(leader)
	paused := time.Now()
	next := c.Leader(10 * time.Second)
	t.Logf("member %d leads %s after the leader (member %d) was paused", next, time.Since(paused).Round(time.Millisecond), leader)
	if next == leader {
		t.Fatalf("member %d, paused, still said to lead", leader)
	}
	put(t, clis[next], "k", "2")
	if _, err := readLocal(clis[leader], "k", 500*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read from the paused leader: %v, want no answer", err)
	}
	c.Resume(leader)
	waitLocal(t, clis[leader], "the resumed former leader", "k", "2", 10*time.Second)
	if l := c.Leader(10 * time.Second); l == leader {
		t.Errorf("the resumed former leader (member %d) leads again", leader)
	}
	put(t, clis[other], "k", "3")
	c.WaitHealthy(10 * time.Second)
}

// TestPausedMemberStopped: a paused member is stopped (continued, then
// killed) by Stop and at the test's end, without being reported as dead,
// and can be restarted; a stopped member cannot be paused.
func TestPausedMemberStopped(t *testing.T) {
	rec := &recordTB{TB: t}
	c := Start(rec, 1)
	c.Pause(0)
	c.mu.Lock()
	exited := c.members[0].exited
	c.mu.Unlock()
	start := time.Now()
	c.Stop(0)
	select {
	case <-exited:
	default:
		t.Fatal("Stop returned before the paused member's process ended")
	}
	t.Logf("a paused member stopped in %s", time.Since(start).Round(time.Millisecond))
	if c.Paused(0) {
		t.Error("a stopped member is still said to be paused")
	}
	c.Restart(0)
	c.WaitHealthy(30 * time.Second)
	c.Pause(0)
	c.mu.Lock()
	exited = c.members[0].exited
	c.mu.Unlock()
	c.closeAndReport() // as the test's cleanup does
	<-exited
	if len(rec.errs) != 0 {
		t.Fatalf("reported: %q", rec.errs)
	}
}
