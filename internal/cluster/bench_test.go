package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// noopGraph is n noop nodes in zone core, in layers of
// REPRISE_BENCH_WIDTH (100 by default: 100 chains of 100 nodes for 10,000),
// each node but the first layer's depending on one node of the layer
// before; with REPRISE_BENCH_DELAY (a duration), each step takes that long.
func noopGraph(n int) string {
	w := envInt("REPRISE_BENCH_WIDTH", 100)
	with := ""
	if d := os.Getenv("REPRISE_BENCH_DELAY"); d != "" {
		with = fmt.Sprintf(", with: {delay: %s}", d)
	}
	var b strings.Builder
	b.WriteString("version: 1\nname: noop10k\nzones:\n  - {id: core, title: Core}\nnodes:\n")
	for i := range n {
		if i < w {
			fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core%s}\n", i, with)
			continue
		}
		fmt.Fprintf(&b, "  - {id: n%d, kind: application, plugin: noop, zone: core, depends_on: [n%d]%s}\n", i, i-w, with)
	}
	return b.String()
}

// BenchmarkDispatch10k runs the same 10,000-node noop graph (100 chains
// of 100) per operation, in the same process, as it is deployed:
//
//   - bbolt: the one-machine run, a durable bbolt file and the local
//     plugin host;
//   - etcd: the cluster run, the run's state on the 3-member etcd cluster
//     (etcdstate, as `--state etcd://… --cluster`) and every step
//     dispatched through etcd to three agents of the zone;
//   - agents-bbolt (REPRISE_BENCH_AGENTS_BBOLT=1): the three agents with
//     the state in a bbolt file, to separate the dispatch's cost from the
//     state's;
//   - etcd-local (REPRISE_BENCH_ETCD_LOCAL=1): the state on etcd and every
//     step in the coordinator's local plugin host, no agents.
//
// Both run at GOGC=400, as `reprise run` and `reprise agent` do (GOGC in
// the environment overrides). It reports the medians, their ratio
// etcd/bbolt (target ≤ 3) and logs each
// round's figures and where a dispatched step's time went (mean time
// between its phases).
func BenchmarkDispatch10k(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		// As deployed, both sides alike: `reprise run` and `reprise agent`
		// collect at GOGC=400 (cmd/reprise session.start, agent).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	c := etcdtest.Start(b, 3)
	n, par, slots := envInt("REPRISE_BENCH_NODES", 10000), envInt("REPRISE_BENCH_PARALLELISM", 256), envInt("REPRISE_BENCH_SLOTS", 128)
	withBolt := os.Getenv("REPRISE_BENCH_AGENTS_BBOLT") == "1"
	withLocal := os.Getenv("REPRISE_BENCH_ETCD_LOCAL") == "1"
	var bolt, etcd, agentsBolt, etcdLocal, ratios, boltCPU, etcdCPU []float64
	for i := range b.N {
		dir := b.TempDir()
		cpu0 := cpuTime()
		bolt = append(bolt, benchLocal(b, dir, n, par))
		boltCPU = append(boltCPU, cpuTime()-cpu0)
		tr := newPhaseTrace(n)
		cluster.SetTracer(tr.see)
		u, err := etcdconn.Parse(c.URL(fmt.Sprintf("bench%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		est := etcdstate.New(dialAsDeployed(b, c), u, etcdstate.Options{})
		split0, m0 := cpuSplit(), etcdMetrics(c)
		pprof.Do(context.Background(), pprof.Labels("phase", "agents"), func(context.Context) {
			etcd = append(etcd, benchAgents(b, c, dir, cluster.NewKeys(u.Root()), est, n, par, slots))
		})
		split, m := cpuSplit().minus(split0), etcdMetrics(c)
		etcdCPU = append(etcdCPU, split.self+split.etcd+split.plugins)
		ss := est.Stats()
		b.Logf("round %d: the engine's state: %d commits, %d changes (%d Apply calls)", i+1, ss.Commits, ss.Changes, ss.Applies)
		est.Close()
		cluster.SetTracer(nil)
		ratios = append(ratios, etcd[i]/bolt[i])
		b.Logf("round %d: bbolt %.2fs (CPU %.2fs), etcd state + 3 agents %.2fs (CPU %.2fs: %v): %.2fx; per node: %s; a dispatched step's time: %s",
			i+1, bolt[i], boltCPU[i], etcd[i], etcdCPU[i], split, ratios[i], m.perNode(m0, n), tr.summary())
		if withBolt {
			st := openStore(b, filepath.Join(dir, "agents.db"))
			agentsBolt = append(agentsBolt, benchAgents(b, c, dir, cluster.NewKeys(fmt.Sprintf("benchb%d", i)), st, n, par, slots))
			st.Close()
			b.Logf("round %d: bbolt state + 3 agents %.2fs: %.2fx", i+1, agentsBolt[i], agentsBolt[i]/bolt[i])
		}
		if withLocal {
			u, err := etcdconn.Parse(c.URL(fmt.Sprintf("benchl%d", i)))
			if err != nil {
				b.Fatal(err)
			}
			est := etcdstate.New(dialAsDeployed(b, c), u, etcdstate.Options{})
			split0, m0 := cpuSplit(), etcdMetrics(c)
			etcdLocal = append(etcdLocal, benchLocalOn(b, dir, est, n, par))
			split, m := cpuSplit().minus(split0), etcdMetrics(c)
			est.Close()
			b.Logf("round %d: etcd state, steps in the coordinator %.2fs (CPU %v): %.2fx; per node: %s", i+1, etcdLocal[i], split, etcdLocal[i]/bolt[i], m.perNode(m0, n))
		}
	}
	mb, me := median(bolt), median(etcd)
	b.ReportMetric(mb, "bbolt-s")
	b.ReportMetric(me, "etcd-s")
	b.ReportMetric(me/mb, "ratio")
	b.ReportMetric(median(ratios), "median-round-ratio")
	b.ReportMetric(median(boltCPU), "bbolt-cpu-s")
	b.ReportMetric(median(etcdCPU), "etcd-cpu-s")
	if withBolt {
		b.ReportMetric(median(agentsBolt), "agents-bbolt-s")
	}
	if withLocal {
		b.ReportMetric(median(etcdLocal), "etcd-local-s")
	}
}

// cpuTime is the CPU time used so far by this process, its reaped children
// (plugin processes that ended) and its live children (the etcd members,
// the plugin processes still serving), in seconds. On a machine shared with
// other jobs, a run's CPU time says what it costs whatever the load.
func cpuTime() float64 {
	c := cpuSplit()
	return c.self + c.etcd + c.plugins
}

// cpuParts is CPU time (seconds) by who used it.
type cpuParts struct{ self, etcd, plugins float64 }

func (c cpuParts) minus(o cpuParts) cpuParts {
	return cpuParts{c.self - o.self, c.etcd - o.etcd, c.plugins - o.plugins}
}

func (c cpuParts) String() string {
	return fmt.Sprintf("engine+coordinator+agents %.2fs, etcd members %.2fs, plugins %.2fs", c.self, c.etcd, c.plugins)
}

func cpuSplit() cpuParts {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	c := cpuParts{self: time.Duration(self.Utime.Nano() + self.Stime.Nano()).Seconds(),
		plugins: time.Duration(kids.Utime.Nano() + kids.Stime.Nano()).Seconds()}
	dirs, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15), counted after the comm.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != me {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		sec := (ut + st) / 100 // clock ticks (USER_HZ, 100 on Linux)
		if strings.Contains(s[:i], "(etcd") {
			c.etcd += sec
		} else {
			c.plugins += sec
		}
	}
	return c
}

// metrics are counters of the etcd members (their /metrics), summed over
// the members.
type metrics map[string]float64

var metricNames = []string{"etcd_server_proposals_committed_total", "etcd_debugging_mvcc_put_total",
	"etcd_debugging_mvcc_delete_total", "etcd_debugging_mvcc_events_total", "grpc_server_handled_total"}

func etcdMetrics(c *etcdtest.Cluster) metrics {
	m := metrics{}
	for _, ep := range c.Endpoints() {
		resp, err := http.Get("http://" + ep + "/metrics")
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(data), "\n") {
			for _, name := range metricNames {
				if rest, ok := strings.CutPrefix(line, name); ok && (rest[0] == ' ' || rest[0] == '{') {
					if name == "grpc_server_handled_total" && !strings.Contains(rest, `grpc_method="Txn"`) {
						continue
					}
					f := strings.Fields(rest)
					v, _ := strconv.ParseFloat(f[len(f)-1], 64)
					m[name] += v
				}
			}
		}
	}
	return m
}

// perNode says what one node cost etcd between m0 and m (proposals as
// committed by one member: the counters are summed over the three).
func (m metrics) perNode(m0 metrics, n int) string {
	per := func(name string) float64 { return (m[name] - m0[name]) / float64(n) }
	return fmt.Sprintf("%.2f Raft proposals, %.2f transactions, %.2f puts, %.2f deletes, %.1f watch events sent",
		per("etcd_server_proposals_committed_total")/3, per("grpc_server_handled_total"),
		per("etcd_debugging_mvcc_put_total")/3, per("etcd_debugging_mvcc_delete_total")/3, per("etcd_debugging_mvcc_events_total"))
}

// benchLocal runs the graph on a durable bbolt file through the local
// plugin host and returns its wall time in seconds.
func benchLocal(b *testing.B, dir string, n, par int) float64 {
	st := openStore(b, filepath.Join(dir, "bolt.db"))
	defer st.Close()
	return benchLocalOn(b, dir, st, n, par)
}

// benchLocalOn runs the graph on state st through the local plugin host.
func benchLocalOn(b *testing.B, dir string, st state.Backend, n, par int) float64 {
	g := mustGraph(b, dir, noopGraph(n))
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand})
	defer h.Close()
	start := time.Now()
	res, err := engine.New(st, h, engine.Options{Parallelism: par, NoProgress: true}).Start(context.Background(), g)
	took := time.Since(start).Seconds()
	if err != nil || res.Status != state.RunSucceeded {
		b.Fatalf("bbolt run: %+v %v", res, err)
	}
	return took
}

// benchAgents runs the graph on state st with every step dispatched to
// three agents under k, and returns its wall time in seconds.
func benchAgents(b *testing.B, c *etcdtest.Cluster, dir string, k cluster.Keys, st state.Backend, n, par, slots int) float64 {
	var agents []*testAgent
	for j := range 3 {
		agents = append(agents, benchAgent(b, c, k, fmt.Sprintf("a%d", j), slots))
	}
	defer func() {
		for _, a := range agents {
			a.stop()
		}
	}()
	g := mustGraph(b, dir, noopGraph(n))
	_, onEtcd := st.(*etcdstate.Store) // on c: offers go in the engine's commits
	d := cluster.NewDispatcher(cluster.DispatcherOptions{Client: dialAsDeployed(b, c), Keys: k, Graph: g, Name: "bench", Prestart: onEtcd,
		Journal: func(ctx context.Context, run string, e *state.Entry) error {
			return st.Apply(ctx, state.Change{RunID: run, Entry: e})
		}})
	defer d.Close()
	if len(d.Agents()) == 0 {
		b.Fatal("no agents seen")
	}
	start := time.Now()
	res, err := engine.New(st, d, engine.Options{Parallelism: par, NoProgress: true}).Start(context.Background(), g)
	took := time.Since(start).Seconds()
	if err != nil || res.Status != state.RunSucceeded {
		b.Fatalf("run through agents: %+v %v", res, err)
	}
	runSpan.Store(&[2]time.Time{start, time.Now()})
	return took
}

// phaseTrace keeps when each node first passed each phase of a dispatched
// call. The run's own goroutines call see tens of thousands of times: a
// node "n<i>" of the graph has its slots in first (one atomic store, no
// lock, nothing allocated), so that measuring costs the run next to
// nothing; other names go to a map under a lock.
type phaseTrace struct {
	first []atomic.Int64 // node i, phase p: first[i*len(phases)+p], UnixNano (0: not yet)
	mu    sync.Mutex
	at    map[string]map[string]time.Time // built by done (and other names)
}

var phases = []string{"call", "dispatched", "seen", "claimed", "ran", "written", "answered"}

func newPhaseTrace(nodes int) *phaseTrace {
	return &phaseTrace{first: make([]atomic.Int64, nodes*len(phases)), at: map[string]map[string]time.Time{}}
}

func (t *phaseTrace) see(node, phase string) {
	now := time.Now()
	p := slices.Index(phases, phase)
	if id, err := strconv.Atoi(strings.TrimPrefix(node, "n")); err == nil && p >= 0 && id >= 0 && (id+1)*len(phases) <= len(t.first) {
		t.first[id*len(phases)+p].CompareAndSwap(0, now.UnixNano())
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep(node, phase, now)
}

// keep records node's phase at at, unless it has one; t.mu is held.
func (t *phaseTrace) keep(node, phase string, at time.Time) {
	m := t.at[node]
	if m == nil {
		m = map[string]time.Time{}
		t.at[node] = m
	}
	if _, ok := m[phase]; !ok {
		m[phase] = at
	}
}

// done moves what see kept in first into at (once the run ended).
func (t *phaseTrace) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.first {
		if ns := t.first[i].Swap(0); ns != 0 {
			t.keep(fmt.Sprintf("n%d", i/len(phases)), phases[i%len(phases)], time.Unix(0, ns))
		}
	}
}

// summary gives the median time between consecutive phases, and from a
// node's answer to its dependent's call (the engine's part: the result
// recorded, the dependent's start recorded), leaving out the first layer
// (it pays for starting the plugin processes).
func (t *phaseTrace) summary() string {
	t.done()
	t.mu.Lock()
	defer t.mu.Unlock()
	gap := func(from, to string, next int) string {
		var ds []float64
		for node, m := range t.at {
			id, _ := strconv.Atoi(strings.TrimPrefix(node, "n"))
			if id < 100 {
				continue
			}
			m2 := m
			if next > 0 {
				m2 = t.at[fmt.Sprintf("n%d", id+next)]
			}
			a, ok1 := m[from]
			z, ok2 := m2[to]
			if ok1 && ok2 {
				ds = append(ds, z.Sub(a).Seconds())
			}
		}
		if len(ds) == 0 {
			return ""
		}
		return fmt.Sprintf("%s→%s %.1fms", from, to, 1000*median(ds))
	}
	var parts []string
	for i := 1; i < len(phases); i++ {
		if p := gap(phases[i-1], phases[i], 0); p != "" {
			parts = append(parts, p)
		}
	}
	if p := gap("answered", "call", 100); p != "" {
		parts = append(parts, "dependent's "+p)
	}
	return "medians (first layer left out): " + strings.Join(parts, ", ") + "; " + t.levels()
}

// runSpan is when the last run through agents started and ended.
var runSpan atomic.Pointer[[2]time.Time]

// levels says where a dependency level's time goes: the medians over
// levels of the time from the level's first call to the last of its nodes
// passing each phase, and from its last answer to the next level's first
// call. A level goes at the pace of its slowest node: the medians per node
// above hide that.
func (t *phaseTrace) levels() string {
	w := envInt("REPRISE_BENCH_WIDTH", 100)
	first := map[int]time.Time{}
	last := map[int]map[string]time.Time{}
	for node, m := range t.at {
		id, err := strconv.Atoi(strings.TrimPrefix(node, "n"))
		if err != nil {
			continue
		}
		l := id / w
		if c, ok := m["call"]; ok && (first[l].IsZero() || c.Before(first[l])) {
			first[l] = c
		}
		if last[l] == nil {
			last[l] = map[string]time.Time{}
		}
		for ph, at := range m {
			if at.After(last[l][ph]) {
				last[l][ph] = at
			}
		}
	}
	var parts []string
	for _, ph := range []string{"call", "dispatched", "ran", "written", "answered"} {
		var ds []float64
		for l := 1; l < len(first); l++ {
			if at, ok := last[l][ph]; ok && !first[l].IsZero() {
				ds = append(ds, at.Sub(first[l]).Seconds())
			}
		}
		if len(ds) > 0 {
			parts = append(parts, fmt.Sprintf("last %s %.1fms", ph, 1000*median(ds)))
		}
	}
	var period []float64
	for l := 1; l+1 < len(first); l++ {
		if !first[l].IsZero() && !first[l+1].IsZero() {
			period = append(period, first[l+1].Sub(first[l]).Seconds())
		}
	}
	if len(period) == 0 {
		return ""
	}
	total := 0.0
	for _, p := range period {
		total += p
	}
	out := fmt.Sprintf("a level, from its first call: %s, next level's first call %.1fms (levels 2 to %d: %.2fs in all)",
		strings.Join(parts, ", "), 1000*median(period), len(first), total)
	if span := runSpan.Load(); span != nil && !first[0].IsZero() && !first[1].IsZero() {
		end := last[len(first)-1]["answered"]
		out += fmt.Sprintf("; start→first call %.0fms, first level %.0fms, last answered→end %.0fms",
			1000*first[0].Sub(span[0]).Seconds(), 1000*first[1].Sub(first[0]).Seconds(), 1000*span[1].Sub(end).Seconds())
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchAgent(b *testing.B, c *etcdtest.Cluster, k cluster.Keys, name string, slots int) *testAgent {
	cli := dialAsDeployed(b, c)
	a := cluster.NewAgent(cluster.AgentOptions{Client: cli, Keys: k, Name: name, Zone: "core", Slots: slots, TTL: 10 * time.Second,
		NewHost: localHost, Logger: zap.NewNop()})
	if err := a.Register(context.Background()); err != nil {
		b.Fatal(err)
	}
	drain, dcancel := context.WithCancel(context.Background())
	hard, hcancel := context.WithCancel(context.Background())
	ta := &testAgent{Agent: a, cli: cli, drain: dcancel, hard: hcancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(drain, hard) }()
	return ta
}

// BenchmarkFailover measures, five times per operation, the time from the
// leading coordinator's SIGKILL to the standby's first step (a line of
// runs.txt written by a step it started), with real `reprise run`
// processes and a lease TTL of 2 s (target: ≤ TTL + 2 s). It reports the
// median and the slowest.
func BenchmarkFailover(b *testing.B) {
	if buildErr != nil {
		b.Skipf("bin/reprise not built: %v", buildErr)
	}
	c := etcdtest.Start(b, 3)
	var took []float64
	for range b.N {
		for j := range 5 {
			took = append(took, failoverOnce(b, c, fmt.Sprintf("fo%d", j)).Seconds())
		}
	}
	b.ReportMetric(median(took), "median-s")
	b.ReportMetric(slices.Max(took), "max-s")
}

func failoverOnce(b *testing.B, c *etcdtest.Cluster, name string) time.Duration {
	dir := b.TempDir()
	graph := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(graph, []byte(failoverGraph(name)), 0o644); err != nil {
		b.Fatal(err)
	}
	url := c.URL("failover-bench")
	db := filepath.Join(dir, "reprise.db")
	leader := reprise(b, "run", "-q", "--cluster", url, "--ttl", "2s", "--state", db, graph)
	waitFor(b, 60*time.Second, "the leader's first step", func() bool {
		_, err := os.Stat(filepath.Join(dir, "runs.txt"))
		return err == nil
	})
	standby := reprise(b, "run", "-q", "--cluster", url, "--ttl", "2s", "--standby", "--state", db, graph)
	runs := filepath.Join(dir, "runs.txt")
	waitFor(b, 60*time.Second, "slow did its work, the standby waits", func() bool {
		_, err := os.Stat(filepath.Join(dir, "slow.done"))
		return err == nil && strings.Contains(standby.output(), "waiting to take over")
	})
	killed := time.Now()
	leader.cmd.Process.Signal(syscall.SIGKILL)
	waitFor(b, 60*time.Second, "the standby's first step", func() bool {
		data, _ := os.ReadFile(runs)
		return strings.Contains(string(data), "after")
	})
	took := time.Since(killed)
	<-standby.done
	<-leader.done
	return took
}

func openStore(b testing.TB, path string) *state.Store {
	st, err := state.Open(path, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// envInt reads a benchmark's size from the environment (def when unset).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkEtcdRoundTrip measures, on the 3-member test cluster, the two
// round trips a dispatched dependency level adds to a run (the floor of
// what agents cost per level, BenchmarkDispatch10k): a key written in one
// transaction (an offer batch, then a result batch) until a watcher of it
// sees it. It reports the medians of 200 writes of 2 KB and of 15 KB (a
// result batch and an offer batch of about 33 steps).
func BenchmarkEtcdRoundTrip(b *testing.B) {
	c := etcdtest.Start(b, 3)
	cli, watcher := c.Client(b), c.Client(b)
	ctx := context.Background()
	for _, size := range []int{2 << 10, 15 << 10} {
		val := strings.Repeat("x", size)
		var commit, seen []float64
		for i := range b.N * 200 {
			prefix := fmt.Sprintf("/rt/%d/%d", size, i)
			wctx, cancel := context.WithCancel(ctx)
			wch := watcher.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithCreatedNotify())
			<-wch // the watch is set up
			start := time.Now()
			if _, err := cli.Txn(ctx).Then(clientv3.OpPut(prefix, val)).Commit(); err != nil {
				b.Fatal(err)
			}
			commit = append(commit, time.Since(start).Seconds()*1000)
			<-wch
			seen = append(seen, time.Since(start).Seconds()*1000)
			cancel()
		}
		b.ReportMetric(median(commit), fmt.Sprintf("commit-%dKB-ms", size>>10))
		b.ReportMetric(median(seen), fmt.Sprintf("seen-%dKB-ms", size>>10))
	}
}

// dialAsDeployed returns a client of c made as `reprise run` and `reprise
// agent` make theirs (etcdconn.Dial: requests to the leader), closed when
// the benchmark ends.
func dialAsDeployed(b *testing.B, c *etcdtest.Cluster) *clientv3.Client {
	u, err := etcdconn.Parse(c.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	cli, err := etcdconn.Dial(context.Background(), u, etcdconn.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	return cli
}
