package etcdstate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// shared is the 3-member cluster the package's tests share; tests that
// stop members start their own.
var shared *etcdtest.Cluster

func TestMain(m *testing.M) {
	c, stop, err := etcdtest.StartShared(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = c
	code := m.Run()
	stop()
	os.Exit(code)
}

var prefixes atomic.Int64

// mustURL returns a state URL of cluster c under a prefix of its own.
func mustURL(t testing.TB, c *etcdtest.Cluster) etcdconn.URL {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	u, err := etcdconn.Parse(c.URL(fmt.Sprintf("t%d/%s", prefixes.Add(1), name)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// mustEtcd opens an etcd store on cluster c (nil: the shared one) under a
// fresh prefix, closed when the test ends.
func mustEtcd(t testing.TB, c *etcdtest.Cluster, opts etcdstate.Options) (*etcdstate.Store, etcdconn.URL) {
	t.Helper()
	if c == nil {
		c = shared
	}
	u := mustURL(t, c)
	st, err := etcdstate.Open(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, u
}

// mustFile opens a fresh bbolt state file, closed when the test ends.
func mustFile(t testing.TB) *state.Store {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "reprise.db"), state.Options{Holder: "test", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// backends returns a fresh store of each kind.
func backends(t *testing.T) map[string]state.Backend {
	et, _ := mustEtcd(t, nil, etcdstate.Options{})
	return map[string]state.Backend{"bbolt": mustFile(t), "etcd": et}
}

// rawClient returns a client of the shared cluster.
func rawClient(t testing.TB) *clientv3.Client {
	return shared.Client(t)
}

var t0 = time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)

// copyRun copies run id from one store to another, as `reprise state copy`
// does, and returns what it copied.
func copyRun(t *testing.T, from, to state.Copier, id string) *state.RunCopy {
	t.Helper()
	c, err := from.ExportRun(id)
	if err != nil {
		t.Fatalf("ExportRun(%s): %v", id, err)
	}
	if err := to.ImportRun(context.Background(), c); err != nil {
		t.Fatalf("ImportRun(%s): %v", id, err)
	}
	return c
}
