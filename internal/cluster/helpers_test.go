package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

func localHost(g *graphs.Graph, log *zap.Logger) step.Host {
	return host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, Logger: log, Limits: g.Limits, BuiltinCommand: hosttest.BuiltinCommand})
}

// testAgent is an agent running in the test process (its plugins are real
// processes).
type testAgent struct {
	*cluster.Agent
	cli   *clientv3.Client
	drain context.CancelFunc
	hard  context.CancelFunc
	done  chan error
}

func startAgent(t *testing.T, c *etcdtest.Cluster, k cluster.Keys, name, zone string, slots int) *testAgent {
	t.Helper()
	return startAgentWith(t, c, cluster.AgentOptions{Keys: k, Name: name, Zone: zone, Slots: slots})
}

// startAgentWith starts an agent with options o; its client, a TTL of 2s,
// the local plugin host and a test logger (warnings up) unless o has them.
func startAgentWith(t *testing.T, c *etcdtest.Cluster, o cluster.AgentOptions) *testAgent {
	t.Helper()
	if o.Client == nil {
		o.Client = c.Client(t)
	}
	if o.TTL == 0 {
		o.TTL = 2 * time.Second
	}
	if o.NewHost == nil {
		o.NewHost = localHost
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	cli, name := o.Client, o.Name
	a := cluster.NewAgent(o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Register(ctx); err != nil {
		t.Fatalf("register agent %s: %v", name, err)
	}
	drain, dcancel := context.WithCancel(context.Background())
	hard, hcancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, cli: cli, drain: dcancel, hard: hcancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(drain, hard) }()
	t.Cleanup(ta.stop)
	return ta
}

func (a *testAgent) stop() {
	a.drain()
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		a.hard()
		<-a.done
	}
	a.hard()
}

// coordinator is an engine over a bbolt file whose host is a Dispatcher.
type coordinator struct {
	st  *state.Store
	eng *engine.Engine
	d   *cluster.Dispatcher
}

func startCoordinator(t *testing.T, c *etcdtest.Cluster, k cluster.Keys, dir string, g *graphs.Graph, agentsOnly bool, opts ...func(*engine.Options)) *coordinator {
	t.Helper()
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	co := &coordinator{st: st}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	var local step.Host
	if !agentsOnly {
		local = localHost(g, log)
	}
	co.d = cluster.NewDispatcher(cluster.DispatcherOptions{Client: c.Client(t), Keys: k, Graph: g, Local: local, AgentsOnly: agentsOnly,
		Logger: log, Name: "coord-" + t.Name(),
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	t.Cleanup(func() { co.d.Close() })
	eo := engine.Options{Parallelism: 8}
	for _, f := range opts {
		f(&eo)
	}
	co.eng = engine.New(st, co.d, eo)
	return co
}

func mustGraph(t testing.TB, dir, src string) *graphs.Graph {
	t.Helper()
	path := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// counts reads a file of lines (one per step invocation) into counts.
func counts(t testing.TB, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range strings.Fields(string(b)) {
		m[l]++
	}
	return m
}

func journalOf(t *testing.T, st *state.Store, run string, types ...state.EntryType) []state.Entry {
	t.Helper()
	var out []state.Entry
	if err := st.Journal(run, 0, func(e state.Entry) error {
		for _, ty := range types {
			if e.Type == ty {
				out = append(out, e)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func nodeStates(t *testing.T, st *state.Store, run string) string {
	t.Helper()
	recs, err := st.Nodes(run)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.ID+"="+string(r.State))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// events collects engine events safely.
type events struct {
	mu  sync.Mutex
	evs []engine.Event
}

func (e *events) add(ev engine.Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }

func clientv3WithPrefix() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }

// runOut is how a run started in the background (startRun) ended.
type runOut struct {
	runID string
	st    state.RunStatus
	err   error
}

// waitSucceeded waits for the run startRun started and fails the test
// unless it succeeded.
func (co *coordinator) waitSucceeded(t *testing.T, ctx context.Context, done <-chan runOut) runOut {
	t.Helper()
	var o runOut
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatal("run did not finish")
	}
	if o.err != nil || o.st != state.RunSucceeded {
		t.Fatalf("run: %s %v; nodes %s", o.st, o.err, nodeStates(t, co.st, o.runID))
	}
	return o
}

// ranOnce fails the test unless each node PREFIX0 … PREFIX(n-1) appended
// its id to path exactly once (each step ran once).
func ranOnce(t *testing.T, path, prefix string, n int) {
	t.Helper()
	got := counts(t, path)
	for i := range n {
		if c := got[fmt.Sprintf("%s%d", prefix, i)]; c != 1 {
			t.Errorf("%s%d ran %d times, want once: %v", prefix, i, c, got)
		}
	}
}

// startRun starts g on co's engine in the background; how it ended comes
// on the channel.
func (co *coordinator) startRun(ctx context.Context, g *graphs.Graph) <-chan runOut {
	done := make(chan runOut, 1)
	go func() {
		res, err := co.eng.Start(ctx, g)
		done <- runOut{res.RunID, res.Status, err}
	}()
	return done
}
