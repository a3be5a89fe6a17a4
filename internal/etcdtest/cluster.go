// Package etcdtest starts a real etcd cluster for tests: every member is an
// etcd server process (bin/etcd, built from the go.etcd.io/etcd/server/v3
// module go.mod pins, see internal/etcdmain) on its own loopback ports and
// data directory. Members can be stopped (SIGKILL: the machine went down)
// and restarted, which is how tests take the cluster's quorum away and give
// it back, and paused (SIGSTOP) and resumed (SIGCONT): a hung member, whose
// connections stay open and whose listening sockets still accept, but
// which answers nothing, to its clients or its peers (pause.go). Nothing
// here is a mock: clients talk gRPC to real Raft members.
//
// Members run out of the test process on purpose: an etcd server that
// exits (its logger's Fatal calls os.Exit) must not take the test binary
// with it, and the race detector of a -race test binary has nothing to
// find in etcd's own code. A member that dies without being stopped fails
// the test, quoting the end of its log.
package etcdtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/internal/buildtest"
)

// Cluster is a running etcd cluster of a few members.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members []*member
	token   string
	deaths  []string // members that exited without being stopped
	flags   []string // Options.Flags
}

// Options tune StartWith. The zero value is what Start uses.
type Options struct {
	// Flags are added to every member's command line, after etcdtest's
	// own ("--max-txn-ops=16" for a cluster configured below etcd's
	// defaults). A flag etcd does not know makes the members fail to start.
	Flags []string
}

type member struct {
	name       string
	dir        string
	log        string
	peerURL    url.URL
	clientURL  url.URL
	proc       *exec.Cmd     // nil while stopped
	exited     chan struct{} // closed when proc has exited
	stopping   bool          // Stop killed proc: its exit is expected
	paused     bool          // Pause stopped proc (SIGSTOP) and Resume did not continue it yet
	serving    bool          // proc has served clients (its exit is news)
	everBooted bool
}

// Start starts a cluster of n members (3 for a real quorum) and waits until
// it has a leader and answers. The cluster is stopped when the test ends,
// before its data directory is removed.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, n, Options{})
}

// StartWith is Start with members started with o's flags.
func StartWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: %d members", n)
	}
	base := t.TempDir() // removed after c.Close (cleanups run last first)
	c := &Cluster{t: t, flags: slices.Clone(o.Flags)}
	t.Cleanup(c.closeAndReport)
	if err := c.boot(base, n); err != nil {
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

// binary is bin/etcd, built once per test binary.
var binary struct {
	once sync.Once
	path string
	err  error
}

func etcdBinary() (string, error) {
	binary.once.Do(func() {
		if binary.err = buildtest.Build("etcd"); binary.err != nil {
			return
		}
		root, err := buildtest.Root()
		binary.path, binary.err = filepath.Join(root, "bin", "etcd"), err
	})
	return binary.path, binary.err
}

// boot picks free loopback ports for n members under base and starts them
// all for the first time; a member that cannot bind its ports makes it
// stop every member, forget their data and try again on other ports.
func (c *Cluster) boot(base string, n int) error {
	if _, err := etcdBinary(); err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
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
			name := fmt.Sprintf("m%d", i)
			c.members = append(c.members, &member{
				name: name, dir: filepath.Join(base, fmt.Sprintf("a%d-%s", attempt, name)),
				log:     filepath.Join(base, fmt.Sprintf("a%d-%s.log", attempt, name)),
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

// start starts member i's process and waits until it serves its clients.
func (c *Cluster) start(i int) error {
	bin, err := etcdBinary()
	if err != nil {
		return err
	}
	c.mu.Lock()
	m := c.members[i]
	if m.proc != nil {
		c.mu.Unlock()
		return fmt.Errorf("%s is running", m.name)
	}
	state := "new"
	if m.everBooted {
		state = "existing"
	}
	args := []string{
		"--name", m.name, "--data-dir", m.dir,
		"--listen-peer-urls", m.peerURL.String(), "--initial-advertise-peer-urls", m.peerURL.String(),
		"--listen-client-urls", m.clientURL.String(), "--advertise-client-urls", m.clientURL.String(),
		"--initial-cluster", c.initialCluster(), "--initial-cluster-token", c.token,
		"--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--log-level", "error", "--log-outputs", "stderr",
	}
	args = append(args, c.flags...)
	c.mu.Unlock()
	logf, err := os.OpenFile(m.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "--- etcdtest: %s starting (%s) at %s\n", m.name, state, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a signal a test sends to its own group (or a
	// terminal's ^C) does not reach the members.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	c.mu.Lock()
	m.proc, m.exited, m.stopping, m.serving, m.paused = cmd, exited, false, false, false
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		c.mu.Lock()
		if !m.stopping && m.serving && m.proc == cmd {
			c.deaths = append(c.deaths, fmt.Sprintf("etcd member %s exited by itself (%v); the end of %s:\n%s",
				m.name, err, m.log, tailFile(m.log, 3000)))
			m.proc = nil
		}
		c.mu.Unlock()
		close(exited)
	}()
	if err := c.waitServing(m, exited, 60*time.Second); err != nil {
		c.Stop(i)
		return err
	}
	c.mu.Lock()
	m.everBooted, m.serving = true, true
	c.mu.Unlock()
	return nil
}

// waitServing waits until member m answers a serializable read (it has
// joined its cluster and serves clients), or its process exits.
func (c *Cluster) waitServing(m *member, exited <-chan struct{}, limit time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.clientURL.Host}, DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited before serving: %s", m.name, tailFile(m.log, 2000))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "/etcdtest/ready", clientv3.WithSerializable())
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not serving after %s: %v", m.name, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// Stop kills member i (SIGKILL: as if its machine went down) and waits for
// its process to end; its data stays.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	m := c.members[i]
	p, exited := m.proc, m.exited
	m.proc = nil
	if p != nil {
		m.stopping = true
	}
	c.mu.Unlock()
	if p == nil {
		return
	}
	// A paused member is continued first (SIGKILL would end it stopped
	// too): no member is left frozen should its kill fail.
	c.continueIfPaused(m, p)
	_ = p.Process.Kill()
	<-exited
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

// closeAndReport stops every member and fails the test if one of them
// exited without being stopped.
func (c *Cluster) closeAndReport() {
	c.Close()
	c.mu.Lock()
	deaths := c.deaths
	c.mu.Unlock()
	for _, d := range deaths {
		c.t.Errorf("etcdtest: %s", d)
	}
}

// tailFile returns the last n bytes of a file, or why it cannot.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err.Error()
	}
	return string(buf)
}
