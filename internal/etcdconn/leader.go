package etcdconn

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// The client talks to the leader. Every write goes through the member that
// leads the cluster; one sent to another member is forwarded to it and
// answered once that member has applied it: a hop more each way, and the
// followers' work for it. A run through agents writes a few transactions
// per dependency level and waits for each, so Dial's client sends its
// requests to one member, the leader when Dial found it, and falls back to
// the next endpoint in order when that member's connection breaks (gRPC's
// pick_first, instead of etcd's default round robin). followLeader checks
// now and then which member leads, and moves the client to it: after an
// election, or when the member it talks to is cut off from the others
// while it still answers (it would fail every write; not tested: the test
// clusters can kill a member, not cut it off).

// pickFirst makes the client send every request to the first endpoint that
// answers, in the order given, instead of spreading them (the resolver's
// service config, round robin, is set aside).
var pickFirst = []grpc.DialOption{
	grpc.WithDisableServiceConfig(),
	grpc.WithDefaultServiceConfig(`{"loadBalancingPolicy":"pick_first"}`),
}

// leaderWait is how long Dial waits, after a first member answered, for
// the leader's own answer (which tells which endpoint it is).
const leaderWait = 200 * time.Millisecond

// leaderCheck is how often a client checks which member leads.
var leaderCheck = 5 * time.Second

// leaderFirst returns eps with leader first, the others in their order.
func leaderFirst(eps []string, leader string) []string {
	out := make([]string, 0, len(eps))
	if leader != "" && slices.Contains(eps, leader) {
		out = append(out, leader)
	}
	for _, ep := range eps {
		if ep != leader {
			out = append(out, ep)
		}
	}
	return out
}

// followLeader moves cli to the member that leads, every period, until cli
// is closed: when the leader is not the first of its endpoints, the client
// is given the leader alone (pick_first keeps a connection whose address
// is still listed: this makes it leave it), then every endpoint again,
// the leader first (to fall back to when the leader goes).
func followLeader(cli *clientv3.Client, eps []string, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-cli.Ctx().Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(cli.Ctx(), period)
		leader := findLeader(ctx, cli, eps)
		cancel()
		if leader == "" || cli.Endpoints()[0] == leader {
			continue
		}
		cli.SetEndpoints(leader)
		cli.SetEndpoints(leaderFirst(eps, leader)...)
	}
}

// findLeader returns the endpoint of the member that says it leads, ""
// when none does (or none answered).
func findLeader(ctx context.Context, cli *clientv3.Client, eps []string) string {
	answers := askStatus(ctx, cli, eps)
	for range eps {
		if a := <-answers; a.leader {
			return a.ep
		}
	}
	return ""
}

// statusAnswer is one endpoint's answer to a Status call: whether its
// member leads, or the call's error.
type statusAnswer struct {
	ep     string
	leader bool
	err    error
}

// askStatus asks every endpoint of eps for its status at once; each
// answer comes on the channel returned, in the order they come. It is
// buffered: calls still under way when the caller stops reading end with
// ctx.
func askStatus(ctx context.Context, cli *clientv3.Client, eps []string) <-chan statusAnswer {
	answers := make(chan statusAnswer, len(eps))
	for _, ep := range eps {
		go func() {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				answers <- statusAnswer{ep: ep, err: fmt.Errorf("%s: %w", ep, err)}
				return
			}
			answers <- statusAnswer{ep: ep, leader: st.Leader != 0 && st.Leader == st.Header.GetMemberId()}
		}()
	}
	return answers
}
