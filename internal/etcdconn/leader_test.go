package etcdconn

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// leaderOf returns the endpoint of the member that leads c, asked of every
// member (in a test: waits up to 10 s for one to say it leads).
func leaderOf(t *testing.T, c *etcdtest.Cluster, cli *clientv3.Client) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ep := findLeader(ctx, cli, c.Endpoints()).ep
		cancel()
		if ep != "" {
			return ep
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no member leads")
	return ""
}

// TestDialTalksToLeader: whatever the order of the URL's endpoints, Dial's
// client sends its requests to the leader first; when the leader's member
// dies, its requests go on through the others, and the client moves to the
// member elected after it.
func TestDialTalksToLeader(t *testing.T) {
	defer func(p time.Duration) { leaderCheck = p }(leaderCheck)
	leaderCheck = 200 * time.Millisecond
	c := etcdtest.Start(t, 3)
	u, err := Parse(c.URL("leadertest"))
	if err != nil {
		t.Fatal(err)
	}
	probe := c.Client(t)
	leader := leaderOf(t, c, probe)
	// The leader last in the URL.
	u.Endpoints = append(slices.DeleteFunc(slices.Clone(u.Endpoints), func(ep string) bool { return ep == leader }), leader)
	ctx := context.Background()
	cli, err := Dial(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if got := cli.Endpoints(); got[0] != leader || len(got) != 3 {
		t.Fatalf("endpoints %v, want the leader %s first, then the others", got, leader)
	}
	if _, err := cli.Put(ctx, u.Key("a"), "1"); err != nil {
		t.Fatal(err)
	}

	// The leader's member dies: once the others elect one, writes go on
	// (through the next member: a write sent during the election may time
	// out, and reprise's writers try again, as this does), and the client
	// moves to the new leader.
	c.Stop(slices.Index(c.Endpoints(), leader))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := cli.Put(wctx, u.Key("b"), "2")
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			t.Fatalf("write after the leader's member died: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	next := leaderOf(t, c, probe)
	deadline := time.Now().Add(10 * time.Second)
	for cli.Endpoints()[0] != next && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := cli.Endpoints(); got[0] != next || len(got) != 3 {
		t.Fatalf("endpoints %v after the election, want the new leader %s first", got, next)
	}
	if _, err := cli.Put(wctx, u.Key("c"), "3"); err != nil {
		t.Fatalf("write to the new leader: %v", err)
	}
}

func TestLeaderFirst(t *testing.T) {
	eps := []string{"a:1", "b:2", "c:3"}
	for _, tt := range []struct {
		leader string
		want   []string
	}{
		{"c:3", []string{"c:3", "a:1", "b:2"}},
		{"a:1", []string{"a:1", "b:2", "c:3"}},
		{"", []string{"a:1", "b:2", "c:3"}},
		{"d:4", []string{"a:1", "b:2", "c:3"}},
	} {
		if got := leaderFirst(eps, tt.leader); !slices.Equal(got, tt.want) {
			t.Errorf("leaderFirst(%v, %q) = %v, want %v", eps, tt.leader, got, tt.want)
		}
	}
}

// memberIDs returns the member ID of every endpoint, asked of each.
func memberIDs(t *testing.T, cli *clientv3.Client, eps []string) map[string]uint64 {
	t.Helper()
	ids := make(map[string]uint64, len(eps))
	for _, ep := range eps {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		ids[ep] = st.Header.GetMemberId()
	}
	return ids
}

// followLimit is how soon after the leadership moved the client must
// talk to the new leader: well under its periodic check.
const followLimit = 1500 * time.Millisecond

// TestLeaderMoveFollowed: when the leadership moves to another member
// while every member lives (MoveLeader, as after an election that a slow
// disk caused), Dial's client talks to the new leader after its first
// reply from the old one, well before its periodic check (set to a minute
// here: only the replies' headers can tell it in time).
func TestLeaderMoveFollowed(t *testing.T) {
	defer func(p time.Duration) { leaderCheck = p }(leaderCheck)
	leaderCheck = time.Minute
	c := etcdtest.Start(t, 3)
	u, err := Parse(c.URL("movetest"))
	if err != nil {
		t.Fatal(err)
	}
	probe := c.Client(t)
	ids := memberIDs(t, probe, c.Endpoints())
	ctx := context.Background()
	cli, err := Dial(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	leader := leaderOf(t, c, probe)
	resp, err := cli.Put(ctx, u.Key("a"), "0")
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.GetMemberId(); got != ids[leader] {
		t.Fatalf("first write answered by member %x, want the leader %s (%x)", got, leader, ids[leader])
	}
	eps := c.Endpoints()
	for move := 1; move <= 3; move++ {
		next := eps[(slices.Index(eps, leader)+1)%len(eps)]
		moveLeader(t, leader, ids[next])
		took, n := untilAnswered(t, cli, u.Key("a"), ids[next])
		t.Logf("move %d: %s → %s; the client's writes answered by the new leader after %s (%d writes)", move, leader, next, took.Round(time.Millisecond), n)
		if got := cli.Endpoints(); got[0] != next {
			t.Fatalf("endpoints %v after the move, want the new leader %s first", got, next)
		}
		leader = next
	}
}

// moveLeader asks the leader, at its endpoint, to hand the leadership to
// member to, and returns once it did.
func moveLeader(t *testing.T, leader string, to uint64) {
	t.Helper()
	mv, err := clientv3.New(clientv3.Config{Endpoints: []string{leader}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer mv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := mv.MoveLeader(ctx, to); err != nil {
		t.Fatalf("move the leadership from %s to member %x: %v", leader, to, err)
	}
}

// untilAnswered writes key through cli, a write every 10 ms, until member
// want answers one; it returns how long that took and how many writes
// were sent, or fails the test after followLimit.
func untilAnswered(t *testing.T, cli *clientv3.Client, key string, want uint64) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	var last uint64
	var lastErr error
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), followLimit)
		resp, err := cli.Put(ctx, key, fmt.Sprint(n))
		cancel()
		if err == nil {
			last = resp.Header.GetMemberId()
			if last == want {
				return time.Since(start), n
			}
		}
		lastErr = err
		if time.Since(start) > followLimit {
			t.Fatalf("after %s (%d writes), writes still answered by member %x (last error: %v), want the new leader %x", time.Since(start).Round(time.Millisecond), n, last, lastErr, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeaderMoveFollowedByWatcher: a client that only watches moves to the
// new leader too, told by the watch events' headers, and its watch goes
// on there.
func TestLeaderMoveFollowedByWatcher(t *testing.T) {
	defer func(p time.Duration) { leaderCheck = p }(leaderCheck)
	leaderCheck = time.Minute
	c := etcdtest.Start(t, 3)
	u, err := Parse(c.URL("watchtest"))
	if err != nil {
		t.Fatal(err)
	}
	probe := c.Client(t)
	ids := memberIDs(t, probe, c.Endpoints())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli, err := Dial(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	leader := leaderOf(t, c, probe)
	events := cli.Watch(ctx, u.Key("w"))
	put := func(v string) {
		t.Helper()
		if _, err := probe.Put(ctx, u.Key("w"), v); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(v string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case wr := <-events:
				if err := wr.Err(); err != nil {
					t.Fatalf("watch: %v", err)
				}
				for _, ev := range wr.Events {
					if string(ev.Kv.Value) == v {
						return
					}
				}
			case <-timeout:
				t.Fatalf("no watch event for %q", v)
			}
		}
	}
	put("1")
	wait("1")
	next := c.Endpoints()[(slices.Index(c.Endpoints(), leader)+1)%3]
	moveLeader(t, leader, ids[next])
	start := time.Now()
	put("2")
	wait("2")
	for cli.Endpoints()[0] != next {
		if time.Since(start) > followLimit {
			t.Fatalf("endpoints %v %s after the move, want the new leader %s first", cli.Endpoints(), followLimit, next)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the watcher moved to the new leader %s after %s", next, time.Since(start).Round(time.Millisecond))
	put("3")
	wait("3")
}

// TestReadAsksOnce: a reply with a greater term or from another member
// asks for one check, without waiting; the others ask for none.
func TestReadAsksOnce(t *testing.T) {
	w := newLeaderWatch(nil, time.Minute, statusAnswer{ep: "a:1", id: 1, term: 5})
	reply := func(member, term uint64) *pb.PutResponse {
		return &pb.PutResponse{Header: &pb.ResponseHeader{MemberId: member, RaftTerm: term}}
	}
	w.read(reply(1, 5))
	w.read(&pb.PutResponse{})
	w.read("not a reply")
	if len(w.kick) != 0 {
		t.Fatal("a check asked for by the leader's reply in its term, or a reply with no header")
	}
	w.read(reply(1, 6))
	w.read(reply(2, 5)) // would block if read waited: one check is already asked for
	if len(w.kick) != 1 || w.stray.Load() != 2 {
		t.Fatalf("%d checks asked for, stray member %d; want 1 and member 2", len(w.kick), w.stray.Load())
	}
}
