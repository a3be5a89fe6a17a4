package etcdconn

import (
	"context"
	"slices"
	"testing"
	"time"

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
		ep := findLeader(ctx, cli, c.Endpoints())
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
