package etcdconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TLS names the client's certificate files. Empty fields are taken from
// the ETCDCTL_CACERT, ETCDCTL_CERT and ETCDCTL_KEY variables (WithEnv);
// with none at all, the client talks plain gRPC.
type TLS struct {
	CACert string // PEM bundle of the CAs that signed the members' certificates
	Cert   string // PEM client certificate
	Key    string // its PEM private key
}

// Env variables read by WithEnv, as etcdctl reads them.
const (
	EnvCACert = "ETCDCTL_CACERT"
	EnvCert   = "ETCDCTL_CERT"
	EnvKey    = "ETCDCTL_KEY"
)

// WithEnv returns t with every empty field taken from its ETCDCTL_*
// variable.
func (t TLS) WithEnv() TLS {
	fill := func(v *string, env string) {
		if *v == "" {
			*v = os.Getenv(env)
		}
	}
	fill(&t.CACert, EnvCACert)
	fill(&t.Cert, EnvCert)
	fill(&t.Key, EnvKey)
	return t
}

// Enabled reports whether any file is named.
func (t TLS) Enabled() bool { return t.CACert != "" || t.Cert != "" || t.Key != "" }

// Config loads the files into a client TLS configuration; nil when none is
// named. A certificate without its key (or the reverse) is a *UsageError;
// a file that cannot be read or parsed gives an error naming it.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	if (t.Cert == "") != (t.Key == "") {
		given, missing := "--etcd-cert", "--etcd-key"
		if t.Cert == "" {
			given, missing = missing, given
		}
		return nil, &UsageError{Value: given, Reason: fmt.Sprintf("given without %s (or %s/%s): a client certificate needs its key", missing, EnvCert, EnvKey)}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA certificate %s: no PEM certificate in it", t.CACert)
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate %s with key %s: %w", t.Cert, t.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Options tunes Dial. The zero value dials without TLS, waiting up to
// DefaultDialTimeout for a member to answer.
type Options struct {
	TLS TLS
	// DialTimeout bounds how long Dial waits for a first answer
	// (DefaultDialTimeout when zero).
	DialTimeout time.Duration
}

// DefaultDialTimeout is how long Dial waits for a member to answer.
const DefaultDialTimeout = 5 * time.Second

// UnreachableError is returned by Dial when no endpoint answered within the
// dial timeout.
type UnreachableError struct {
	Endpoints []string
	Timeout   time.Duration
	Err       error // the last endpoint's error
}

// Error names every endpoint tried and the timeout.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("etcd unreachable: no answer from %s within %s: %v", strings.Join(e.Endpoints, ", "), e.Timeout, e.Err)
}

// Unwrap returns the last endpoint's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Dial connects to the cluster of u and checks that at least one member
// answers (a Status call), so that an unreachable cluster fails here,
// within the dial timeout, with *UnreachableError, rather than later in
// the first request. The members need not have a quorum: a read-only
// command can still read what one member serves, and a writer blocks until
// the quorum is back. The client talks to the member that leads the
// cluster while it can (leader.go). The caller closes the client.
func Dial(ctx context.Context, u URL, opts Options) (*clientv3.Client, error) {
	timeout := opts.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	tc, err := opts.TLS.Config()
	if err != nil {
		return nil, err
	}
	cfg := clientv3.Config{
		Endpoints:   u.Endpoints,
		DialTimeout: timeout,
		TLS:         tc,
		Logger:      zap.NewNop(),
		// Keep the connection alive so that a dead member is noticed and
		// the client moves to another one.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	}
	probe, err := clientv3.New(cfg)
	if err != nil {
		return nil, &UnreachableError{Endpoints: u.Endpoints, Timeout: timeout, Err: err}
	}
	leader, err := ping(ctx, probe, u.Endpoints, timeout)
	_ = probe.Close()
	if err != nil {
		return nil, err
	}
	w := newLeaderWatch(u.Endpoints, leaderCheck, leader)
	w.statusTimeout = min(w.statusTimeout, timeout)
	cfg.Endpoints = leaderFirst(u.Endpoints, leader.ep)
	cfg.DialOptions = append(slices.Clone(pickFirst), w.dialOptions()...)
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, &UnreachableError{Endpoints: u.Endpoints, Timeout: timeout, Err: err}
	}
	w.conn.Store(cli.ActiveConnection())
	go w.follow(cli)
	return cli, nil
}

// ping asks every endpoint for its status at once and returns as soon as
// one answers, with the leader's answer when it came by then or within
// leaderWait after (one with no endpoint if not).
func ping(ctx context.Context, cli *clientv3.Client, eps []string, timeout time.Duration) (statusAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answers := askStatus(ctx, cli, eps)
	var errs []error
	var grace <-chan time.Time
	answered := false
	for range eps {
		var a statusAnswer
		select {
		case a = <-answers:
		case <-grace:
			return statusAnswer{}, nil // a member answered; the leader did not yet
		}
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		if a.leader {
			return a, nil
		}
		if !answered {
			answered = true
			grace = time.After(leaderWait)
		}
	}
	if answered {
		return statusAnswer{}, nil
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return statusAnswer{}, ctx.Err()
	}
	return statusAnswer{}, &UnreachableError{Endpoints: eps, Timeout: timeout, Err: errors.Join(errs...)}
}
