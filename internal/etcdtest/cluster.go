// Package etcdtest starts a real etcd cluster for tests: every member is an
// etcd server (go.etcd.io/etcd/server/v3/embed) running in the test process on
// its own loopback ports and data directory. Members can be stopped and
// restarted, which is how tests take the cluster's quorum away and give it
// back. Nothing here is a mock: clients talk gRPC to real Raft members.
package etcdtest

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster is a running etcd cluster of a few members.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members []*member
	token   string
}

type member struct {
	name       string
	dir        string
	peerURL    url.URL
	clientURL  url.URL
	etcd       *embed.Etcd // nil while stopped
	everBooted bool
}

// Start starts a cluster of n members (3 for a real quorum) and waits until
// it has a leader and answers. The cluster is stopped when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: %d members", n)
	}
	c := &Cluster{t: t}
	t.Cleanup(c.Close)
	if err := c.boot(t.TempDir(), n); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(30 * time.Second)
	return c
}

// bootAttempts bounds the retries of a first boot whose ports were taken
// between choosing them and binding them (another process may bind a port
// the kernel just reported free).
const bootAttempts = 5

// pickAddr chooses a free loopback address (a variable for the test that
// makes a first choice collide).
var pickAddr = freeAddrErr

// boot picks free loopback ports for n members under base and starts them
// all for the first time; a member that cannot bind its ports makes it
// stop every member, forget their data and try again on other ports.
func (c *Cluster) boot(base string, n int) error {
	var last error
	for attempt := 1; attempt <= bootAttempts; attempt++ {
		c.mu.Lock()
		c.token = fmt.Sprintf("reprise-test-%d", time.Now().UnixNano())
		c.members = nil
		for i := 0; i < n; i++ {
			peer, err1 := pickAddr()
			client, err2 := pickAddr()
			if err1 != nil || err2 != nil {
				c.mu.Unlock()
				return fmt.Errorf("etcdtest: free port: %v %v", err1, err2)
			}
			c.members = append(c.members, &member{
				name: fmt.Sprintf("m%d", i), dir: filepath.Join(base, fmt.Sprintf("a%d-m%d", attempt, i)),
				peerURL: urlOf(peer), clientURL: urlOf(client),
			})
		}
		c.mu.Unlock()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range c.members {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i] = c.start(i)
			}(i)
		}
		wg.Wait()
		last = nil
		for i, err := range errs {
			if err != nil {
				last = fmt.Errorf("etcdtest: member %d: %w", i, err)
				break
			}
		}
		if last == nil {
			return nil
		}
		c.Close()
		if !strings.Contains(last.Error(), "address already in use") {
			return last
		}
	}
	return fmt.Errorf("%w (after %d attempts on other ports)", last, bootAttempts)
}

func (c *Cluster) initialCluster() string {
	var parts []string
	for _, m := range c.members {
		parts = append(parts, m.name+"="+m.peerURL.String())
	}
	return strings.Join(parts, ",")
}

func (c *Cluster) start(i int) error {
	c.mu.Lock()
	m := c.members[i]
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.InitialCluster = c.initialCluster()
	cfg.InitialClusterToken = c.token
	cfg.ClusterState = embed.ClusterStateFlagNew
	if m.everBooted {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(filepath.Dir(m.dir), m.name+".log")}
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	c.mu.Unlock()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return fmt.Errorf("not ready after 60s")
	}
	c.mu.Lock()
	m.etcd = e
	m.everBooted = true
	c.mu.Unlock()
	return nil
}

// Endpoints returns every member's client address (host:port), stopped
// members included, as a client would be configured.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL.Host)
	}
	return eps
}

// URL returns a reprise state URL for this cluster under prefix:
// etcd://HOST:PORT,HOST:PORT,.../PREFIX.
func (c *Cluster) URL(prefix string) string {
	return "etcd://" + strings.Join(c.Endpoints(), ",") + "/" + strings.TrimPrefix(prefix, "/")
}

// Client returns a client of the cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Stop stops member i (as if its machine went down); its data stays.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	e := c.members[i].etcd
	c.members[i].etcd = nil
	c.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts a stopped member i again on its data directory.
func (c *Cluster) Restart(i int) {
	c.helper()
	if err := c.start(i); err != nil {
		c.fatalf("etcdtest: restart member %d: %v", i, err)
	}
}

// WaitHealthy waits until a write through a fresh client succeeds (the
// cluster has a leader and a quorum), or fails the test.
func (c *Cluster) WaitHealthy(limit time.Duration) {
	c.helper()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = cli.Put(ctx, "/etcdtest/health", time.Now().String())
			cancel()
			cli.Close()
			if err == nil {
				return
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	c.fatalf("etcdtest: cluster not healthy after %s: %v", limit, last)
}

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}
