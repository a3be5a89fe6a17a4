package etcdtest

import (
	"context"
	"os/exec"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Pause stops member i's process with SIGSTOP: a hung member. Its TCP
// connections stay open and its listening sockets still accept (the
// kernel completes the handshakes), but it reads, answers and sends
// nothing, to its clients or its peers: to the others it is a member cut
// off from them, to its clients a member that hangs without refusing
// connections. Once an election timeout (500 ms here) passes without its
// heartbeats, the others elect a leader among themselves if it led.
// Pausing a stopped or paused member fails the test.
func (c *Cluster) Pause(i int) {
	c.helper()
	c.mu.Lock()
	m := c.members[i]
	p, paused := m.proc, m.paused
	if p != nil && !paused {
		m.paused = true
	}
	c.mu.Unlock()
	switch {
	case p == nil:
		c.fatalf("etcdtest: pause member %d: it is stopped", i)
	case paused:
		c.fatalf("etcdtest: pause member %d: it is paused already", i)
	}
	if err := p.Process.Signal(syscall.SIGSTOP); err != nil {
		c.fatalf("etcdtest: pause member %d: %v", i, err)
	}
}

// Resume continues paused member i (SIGCONT). It rejoins its cluster by
// itself: a leader that was paused finds a later term and steps down, and
// the member catches up on what was committed meanwhile. Resuming a
// member that is not paused fails the test.
func (c *Cluster) Resume(i int) {
	c.helper()
	c.mu.Lock()
	m := c.members[i]
	p, paused := m.proc, m.paused
	c.mu.Unlock()
	if p == nil || !paused {
		c.fatalf("etcdtest: resume member %d: it is not paused", i)
	}
	if !c.continueIfPaused(m, p) {
		c.fatalf("etcdtest: resume member %d: it is not paused", i)
	}
}

// Paused reports whether member i is paused.
func (c *Cluster) Paused(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].paused
}

// continueIfPaused sends SIGCONT to p, member m's process, if m is paused,
// and reports whether it was.
func (c *Cluster) continueIfPaused(m *member, p *exec.Cmd) bool {
	c.mu.Lock()
	paused := m.paused
	m.paused = false
	c.mu.Unlock()
	if paused {
		_ = p.Process.Signal(syscall.SIGCONT)
	}
	return paused
}

// Leader returns the index of the member that says it leads, asking every
// member that is neither stopped nor paused at once, each with a timeout
// of its own; it waits up to limit for one (an election under way), then
// fails the test.
func (c *Cluster) Leader(limit time.Duration) int {
	c.helper()
	deadline := time.Now().Add(limit)
	for {
		if i := c.leader(); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			c.fatalf("etcdtest: no member leads after %s", limit)
			return -1
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader asks each running member whether it leads; -1 when none says so.
// Of two that say so (a leader just resumed, not yet told of the election
// it missed), the one of the later term.
func (c *Cluster) leader() int {
	c.mu.Lock()
	var ask []int
	for i, m := range c.members {
		if m.proc != nil && !m.paused {
			ask = append(ask, i)
		}
	}
	eps := c.Endpoints()
	c.mu.Unlock()
	found, term := -1, uint64(0)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[i]}, DialTimeout: time.Second, Logger: zap.NewNop()})
			if err != nil {
				return
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			st, err := cli.Status(ctx, eps[i])
			if err == nil && st.Leader != 0 && st.Leader == st.Header.GetMemberId() {
				mu.Lock()
				if st.RaftTerm > term {
					found, term = i, st.RaftTerm
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return found
}
