package etcdconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
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
// pick_first, instead of etcd's default round robin).
//
// Every etcd reply says which member answered and its Raft term (its
// ResponseHeader). A leaderWatch reads them as they come (gRPC client
// interceptors, inside etcd's own retry interceptors: every attempt's
// reply is seen) and, when one comes with a term greater than the client
// knew or from a member other than the leader it chose, asks at once
// which member leads and moves the client to it: after an election or a
// leadership transfer (MoveLeader), the client talks to the new leader
// once its first reply from the old one came and one Status round trip
// later (TestLeaderMoveFollowed, a local cluster, a write every 10 ms:
// 14-90 ms after MoveLeader returned, median about 20 ms) instead of at
// the next periodic check. A member that hangs sends no reply at all: a
// request unanswered for slowCall asks for a check too, and the requests
// left in flight on a member that hangs are given up once the client
// moved (inflight.go; TestHungLeaderLeft: the leader SIGSTOPped, a
// client's writes stall 0.9 s, 5 s before); so is a write sent during an
// election to the member the client fell back to when the leader died
// (TestKilledLeaderWrites: 0.7-1.25 s, 5 s before), but for one waiting on
// the member then elected, which answers it (by etcd's request timeout,
// 6 s on the test clusters, at worst). The
// check also runs every leaderCheck (5 s), for what no reply tells: a
// member cut off from the others while it still answers its clients keeps
// its term and fails every write (not tested: a paused member answers
// nobody; a client on it moves within 5 s). Each member's answer to a
// check is awaited statusTimeout at most, and a check without a leader
// waits leaderWait once most members answered: one that hangs no longer
// holds a check for 5 s (TestHungMembersCheck).

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

// leaderCheck is how often a client checks which member leads, whatever
// its replies say.
var leaderCheck = 5 * time.Second

// checkGap is the least time between the end of a check that found no
// leader (or moved the client to the leader it had just moved it to) and
// the next check a reply asks for. It doubles, up to leaderCheck, after
// every such check, so that replies that keep asking (no leader for a
// while) do not keep the members busy; after a check that found the
// leader, the next one a reply asks for runs at once.
const checkGap = 100 * time.Millisecond

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

// leaderWatch keeps one client on the leader: its interceptors read the
// replies on the client's connection, its follow loop checks which member
// leads when they ask for it and every period.
type leaderWatch struct {
	eps    []string
	period time.Duration
	// conn is the client's connection; replies on other connections (the
	// checks' own Status calls, which dial each member) are not read.
	conn   atomic.Pointer[grpc.ClientConn]
	leader atomic.Uint64 // member ID of the leader the client was sent to; 0 while none is known
	term   atomic.Uint64 // the leader's Raft term when found
	stray  atomic.Uint64 // a member other than the leader that answered since the last check
	kick   chan struct{} // a check asked for (at most one waits)
	calls  inflight      // the requests in flight on conn (inflight.go)
	// lastRead is when the last reply came on conn (UnixNano); probing
	// says a probe of an idle connection is under way (inflight.go).
	lastRead atomic.Int64
	probing  atomic.Bool
	// statusTimeout bounds each member's answer to a check.
	statusTimeout time.Duration
}

func newLeaderWatch(eps []string, period time.Duration, leader statusAnswer) *leaderWatch {
	w := &leaderWatch{eps: eps, period: period, kick: make(chan struct{}, 1), statusTimeout: statusTimeout}
	w.leader.Store(leader.id)
	w.term.Store(leader.term)
	return w
}

// dialOptions returns the interceptors that read the replies.
func (w *leaderWatch) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(w.unary),
		grpc.WithChainStreamInterceptor(w.stream),
	}
}

func (w *leaderWatch) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if cc != w.conn.Load() {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c, cctx := w.calls.track(ctx, true)
	err := invoker(cctx, method, req, reply, cc, opts...)
	w.calls.done(c)
	if err != nil {
		if aerr := c.abortedErr(ctx); aerr != nil {
			return aerr
		}
		return err
	}
	w.read(reply)
	return nil
}

func (w *leaderWatch) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if cc != w.conn.Load() {
		return streamer(ctx, desc, cc, method, opts...)
	}
	c, cctx := w.calls.track(ctx, false)
	s, err := streamer(cctx, desc, cc, method, opts...)
	if err != nil {
		w.calls.done(c)
		if aerr := c.abortedErr(ctx); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	// The stream ends when its caller cancels it (or the watch gives it
	// up), or when RecvMsg fails.
	context.AfterFunc(cctx, func() { w.calls.forget(c) })
	return &watchedStream{ClientStream: s, w: w, c: c, ctx: ctx}, nil
}

// read asks for a check, without waiting, when reply comes with a term
// greater than the leader's or from another member.
func (w *leaderWatch) read(reply any) {
	w.lastRead.Store(time.Now().UnixNano())
	r, ok := reply.(interface{ GetHeader() *pb.ResponseHeader })
	if !ok {
		return
	}
	h := r.GetHeader()
	if h == nil || h.MemberId == 0 {
		return
	}
	other := h.MemberId != w.leader.Load()
	if !other && h.RaftTerm <= w.term.Load() {
		return
	}
	if other {
		w.stray.Store(h.MemberId)
	}
	select {
	case w.kick <- struct{}{}:
	default: // a check is already asked for
	}
}

// follow moves cli to the member that leads when a reply asks for it, when
// a request waits too long for its answer, and every period, until cli is
// closed.
func (w *leaderWatch) follow(cli *clientv3.Client) {
	t := time.NewTicker(w.period)
	defer t.Stop()
	scan := time.NewTicker(slowCall / 4)
	defer scan.Stop()
	var gap time.Duration // least time between the last check and one a reply asks for
	var last time.Time    // end of the last check
	var movedTo string    // the leader the last check moved the client to
	found := false        // the last check found the leader
	for {
		select {
		case <-cli.Ctx().Done():
			return
		case <-t.C:
		case <-w.kick:
			if wait := time.Until(last.Add(gap)); wait > 0 {
				select {
				case <-cli.Ctx().Done():
					return
				case <-time.After(wait):
				}
			}
		case now := <-scan.C:
			w.probeIdle(now)
			// A request waits: the member it went to may hang. Once a
			// check found the leader answering, a slow request asks for
			// the next one slowCall later.
			wait := gap
			if found {
				wait = max(gap, slowCall)
			}
			if !w.calls.scan(now) || now.Sub(last) < wait {
				continue
			}
		}
		leader, moved := w.check(cli)
		last = time.Now()
		found = leader != ""
		// Replies read during the check came from before the move; the
		// next ones are read against what it found.
		select {
		case <-w.kick:
		default:
		}
		if leader == "" || moved && leader == movedTo {
			gap = min(max(2*gap, checkGap), w.period) // no leader, or moving did not hold
		} else {
			gap = 0
		}
		movedTo = ""
		if moved {
			movedTo = leader
		}
	}
}

// check asks which member leads and, when the client is not on it, gives
// the client the leader alone (pick_first keeps a connection whose address
// is still listed: this makes it leave it), then every endpoint again, the
// leader first (to fall back to when the leader goes). When the member it
// leaves does not answer within the status timeout, the requests still in
// flight there are given up (inflight.go). It returns the leader's
// endpoint ("" when none was found) and whether it moved the client.
func (w *leaderWatch) check(cli *clientv3.Client) (leader string, moved bool) {
	ctx, cancel := context.WithTimeout(cli.Ctx(), w.statusTimeout)
	answers := askStatus(ctx, cli, w.eps)
	l, seen, n := leaderAmong(answers, len(w.eps))
	stray := w.stray.Swap(0)
	from := cli.Endpoints()[0]
	if l.ep == "" {
		cancel()
		return "", false
	}
	w.term.Store(l.term)
	w.leader.Store(l.id)
	if from == l.ep && (stray == 0 || stray == l.id) {
		cancel()
		return l.ep, false
	}
	cli.SetEndpoints(l.ep)
	cli.SetEndpoints(leaderFirst(w.eps, l.ep)...)
	gen := w.calls.moved(l.ep)
	if from == l.ep {
		cancel()
		return l.ep, true
	}
	// Did the member left answer? Its answer may come after the
	// leader's, within the status timeout.
	left := func(a statusAnswer) {
		if a.err != nil && errors.Is(a.err, context.DeadlineExceeded) {
			w.calls.giveUp(gen, errHung("the member at %s did not answer within %s (it hangs, or is cut off); the client moved to the leader at %s", from, w.statusTimeout, l.ep), nil)
		}
	}
	if a, ok := seen[from]; ok {
		cancel()
		left(a)
		return l.ep, true
	}
	go func() {
		defer cancel()
		for range len(w.eps) - n {
			if a := <-answers; a.ep == from {
				left(a)
				return
			}
		}
	}()
	return l.ep, true
}

// findLeader returns the answer of the member that says it leads, one
// with no endpoint when none does (or none answered).
func findLeader(ctx context.Context, cli *clientv3.Client, eps []string) statusAnswer {
	l, _, _ := leaderAmong(askStatus(ctx, cli, eps), len(eps))
	return l
}

// leaderAmong reads the answers of n members as they come: it returns the
// leader's as soon as it comes; without it, once all came, or leaderWait
// after more than half came (a member that hangs does not hold the check
// until its timeout while the others elect a leader), with the answers read
// by endpoint and how many were read.
func leaderAmong(answers <-chan statusAnswer, n int) (statusAnswer, map[string]statusAnswer, int) {
	seen := make(map[string]statusAnswer, n)
	var grace <-chan time.Time
	for read := 0; read < n; {
		select {
		case a := <-answers:
			read++
			seen[a.ep] = a
			if a.leader {
				return a, seen, read
			}
			if grace == nil && read > n/2 && read < n {
				grace = time.After(leaderWait)
			}
		case <-grace:
			return statusAnswer{}, seen, read
		}
	}
	return statusAnswer{}, seen, n
}

// statusAnswer is one endpoint's answer to a Status call: its member's ID,
// Raft term and whether it leads, or the call's error.
type statusAnswer struct {
	ep     string
	id     uint64
	term   uint64
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
			id := st.Header.GetMemberId()
			answers <- statusAnswer{ep: ep, id: id, term: st.RaftTerm, leader: st.Leader != 0 && st.Leader == id}
		}()
	}
	return answers
}
