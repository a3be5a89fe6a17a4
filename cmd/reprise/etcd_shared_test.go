package main

import (
	"sync"
	"testing"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// shared is the package's 3-member etcd cluster, started by the first
// test that asks for it and stopped by TestMain once every test is over.
var shared struct {
	once sync.Once
	c    *etcdtest.Cluster
	stop func()
	err  error
}

// sharedEtcd returns the package's etcd cluster (a real 3-member quorum,
// started once: a start costs seconds). Each test keeps to a prefix of its
// own. Tests that stop members start a cluster of their own with
// etcdtest.Start.
func sharedEtcd(t *testing.T) *etcdtest.Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.stop, shared.err = etcdtest.StartShared(3) })
	if shared.err != nil {
		t.Fatalf("shared etcd cluster: %v", shared.err)
	}
	return shared.c
}

// stopSharedEtcd stops the shared cluster, if a test started it.
func stopSharedEtcd() {
	if shared.stop != nil {
		shared.stop()
	}
}
