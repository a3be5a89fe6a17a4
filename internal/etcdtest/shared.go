package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// StartShared starts a cluster of n members outside any test, for a
// package's tests to share (from TestMain): starting one costs seconds.
// Tests that stop members should start their own with Start. stop stops
// the members and removes their data.
func StartShared(n int) (c *Cluster, stop func(), err error) {
	base, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, nil, err
	}
	c = &Cluster{}
	stop = func() {
		c.Close()
		c.mu.Lock()
		for _, d := range c.deaths {
			fmt.Fprintf(os.Stderr, "etcdtest: %s\n", d)
		}
		c.mu.Unlock()
		os.RemoveAll(base)
	}
	if err := c.boot(base, n); err != nil {
		stop()
		return nil, nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			stop()
			c, stop, err = nil, nil, fmt.Errorf("%v", r)
		}
	}()
	c.WaitHealthy(30 * time.Second)
	return c, stop, nil
}

// fatalf fails the cluster's test, or panics for a shared cluster.
func (c *Cluster) fatalf(format string, args ...any) {
	if c.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	c.t.Helper()
	c.t.Fatalf(format, args...)
}

func (c *Cluster) helper() {
	if c.t != nil {
		c.t.Helper()
	}
}

func freeAddrErr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func urlOf(host string) url.URL { return url.URL{Scheme: "http", Host: host} }
