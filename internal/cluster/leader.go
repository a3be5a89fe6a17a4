package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// ErrLeaderLive is returned by Elect without Standby when another
// coordinator leads.
var ErrLeaderLive = errors.New("another coordinator leads this graph's run")

// LeaderInfo is what a coordinator writes in the election.
type LeaderInfo struct {
	Name    string    `json:"name"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
}

// LeaderError names the live leader.
type LeaderError struct {
	Graph  string
	Leader LeaderInfo
}

// Error names the leader and what to do.
func (e *LeaderError) Error() string {
	l := e.Leader
	return fmt.Sprintf("%v: graph %q is led by coordinator %s (host %s, pid %d, since %s): start this one with --standby to wait and take over if it dies",
		ErrLeaderLive, e.Graph, l.Name, l.Host, l.PID, l.Since.UTC().Format(time.RFC3339))
}

// Unwrap returns ErrLeaderLive.
func (e *LeaderError) Unwrap() error { return ErrLeaderLive }

// ElectOptions configure Elect.
type ElectOptions struct {
	Client *clientv3.Client
	Keys   Keys
	Graph  string // the graph's name: one leader per graph's run
	Name   string // this coordinator ("": host:pid)
	// Command says what the coordinator runs ("run graph.yaml" …), for
	// the refusal message of another one.
	Command string
	TTL     time.Duration // the leadership's lease (0: DefaultTTL)
	// Standby waits for the leader to go instead of refusing.
	Standby bool
	// OnWait is called once when a standby starts waiting, with the leader.
	OnWait func(LeaderInfo)
	Logger *zap.Logger
}

// Leadership is a coordinator's lead of a graph's run, held under a lease:
// it ends when the process dies or loses etcd past the TTL.
type Leadership struct {
	sess *concurrency.Session
	el   *concurrency.Election
	Info LeaderInfo
}

// Elect takes the lead of graph's coordinators. Without Standby, a live
// leader makes it fail at once with a *LeaderError naming it; with Standby
// it waits (until ctx is done) for the leader to resign or die.
func Elect(ctx context.Context, o ElectOptions) (*Leadership, error) {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	host, _ := os.Hostname()
	if o.Name == "" {
		o.Name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	info := LeaderInfo{Name: o.Name, Host: host, PID: os.Getpid(), Since: time.Now().UTC(), Command: o.Command}
	ttl := int(max(1, o.TTL.Round(time.Second)/time.Second))
	sess, err := concurrency.NewSession(o.Client, concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("coordinator election of graph %q: %w", o.Graph, err)
	}
	el := concurrency.NewElection(sess, o.Keys.Leader(o.Graph))
	leader := func() (LeaderInfo, bool) {
		resp, err := el.Leader(ctx)
		if err != nil || len(resp.Kvs) == 0 {
			return LeaderInfo{}, false
		}
		var li LeaderInfo
		json.Unmarshal(resp.Kvs[0].Value, &li)
		return li, true
	}
	val, _ := json.Marshal(info)
	if !o.Standby {
		if li, ok := leader(); ok {
			sess.Close()
			return nil, &LeaderError{Graph: o.Graph, Leader: li}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := el.Campaign(cctx, string(val))
		cancel()
		if err != nil {
			li, ok := leader()
			sess.Close()
			if ok && errors.Is(err, context.DeadlineExceeded) {
				return nil, &LeaderError{Graph: o.Graph, Leader: li}
			}
			return nil, fmt.Errorf("coordinator election of graph %q: %w", o.Graph, err)
		}
		return &Leadership{sess: sess, el: el, Info: info}, nil
	}
	if li, ok := leader(); ok && o.OnWait != nil {
		o.OnWait(li)
	}
	if err := el.Campaign(ctx, string(val)); err != nil {
		sess.Close()
		return nil, fmt.Errorf("coordinator election of graph %q (standby): %w", o.Graph, err)
	}
	return &Leadership{sess: sess, el: el, Info: info}, nil
}

// Lost is closed when the leadership's lease is lost (etcd unreachable
// past the TTL): another coordinator may lead now, this one must stop.
func (l *Leadership) Lost() <-chan struct{} { return l.sess.Done() }

// resignTimeout bounds Resign: a coordinator stopping while etcd has no
// quorum must not wait for it (its lease then expires by itself, after the
// TTL, and a standby takes over then).
const resignTimeout = 5 * time.Second

// Resign gives the lead up (a clean stop): a standby takes over at once.
// It returns within resignTimeout, answered or not (Session.Close would
// wait up to the lease's TTL for etcd).
func (l *Leadership) Resign() {
	ctx, cancel := context.WithTimeout(context.Background(), resignTimeout)
	defer cancel()
	l.el.Resign(ctx)
	l.sess.Orphan() // stop renewing the lease; revoke it within the same budget
	l.sess.Client().Revoke(ctx, l.sess.Lease())
}
