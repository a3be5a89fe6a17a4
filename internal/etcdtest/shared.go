package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
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
	c = &Cluster{token: fmt.Sprintf("reprise-test-%d", time.Now().UnixNano())}
	for i := 0; i < n; i++ {
		peer, err1 := freeAddrErr()
		client, err2 := freeAddrErr()
		if err1 != nil || err2 != nil {
			os.RemoveAll(base)
			return nil, nil, fmt.Errorf("etcdtest: free port: %v %v", err1, err2)
		}
		c.members = append(c.members, &member{
			name: fmt.Sprintf("m%d", i), dir: filepath.Join(base, fmt.Sprintf("m%d", i)),
			peerURL: urlOf(peer), clientURL: urlOf(client),
		})
	}
	stop = func() {
		c.Close()
		os.RemoveAll(base)
	}
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
	for i, err := range errs {
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("etcdtest: member %d: %w", i, err)
		}
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
