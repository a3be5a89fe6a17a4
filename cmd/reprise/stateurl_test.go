package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdconn"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestCLIEtcdState runs the gates graph with --state etcd://… on a real
// 3-member cluster, each command a fresh process: run parks at the gate,
// status reads it, approve writes the approval, resume finishes it, and
// log --verify, report and runs read it back.
func TestCLIEtcdState(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	c := sharedEtcd(t)
	url := c.URL("cli/reprise")
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	out := d.mustRun(exitParked, "run", "--state", url, g)
	if !strings.Contains(out, "parked") {
		t.Errorf("run output:\n%s", out)
	}
	s := d.status("--state", url)
	if s.Status != "parked" || s.Total != 4 || s.Done != 2 || len(s.Waiting) != 1 {
		t.Fatalf("status after park: %+v", s)
	}
	d.mustRun(0, "approve", "--state", url, s.Run, "lab-reentry", "--by", "alice", "--comment", "forms typed in")
	d.mustRun(0, "resume", "--state", url)
	s = d.status("--state", url, s.Run)
	if s.Status != "succeeded" || s.Done != 4 {
		t.Errorf("status after resume: %+v", s)
	}
	if out := d.mustRun(0, "log", "--state", url, s.Run, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
	if out := d.mustRun(0, "log", "--state", url, s.Run, "--node", "lab-reentry"); !strings.Contains(out, "by alice") {
		t.Errorf("log --node:\n%s", out)
	}
	if out := d.mustRun(0, "report", "--state", url, s.Run); !strings.Contains(out, "lab-report") {
		t.Errorf("report:\n%s", tail(out, 2000))
	}
	if out := d.mustRun(0, "runs", "--state", url); !strings.Contains(out, s.Run) {
		t.Errorf("runs: %s", out)
	}
	if done := readFile(t, d.path("done.txt")); done != "ad\nlab-report\n" {
		t.Errorf("steps ran: %q", done)
	}
	// The first operator needs no token; the next ones an admin's
	// (TestEtcdOperatorsNeedAdmin).
	root := strings.TrimSpace(d.mustRun(0, "operators", "add", "root", "--role", "admin", "--state", url))
	d.env = append(d.env, "REPRISE_TOKEN="+root)
	d.mustRun(0, "operators", "add", "vic", "--role", "viewer", "--state", url)
	if out := d.mustRun(0, "operators", "list", "--state", url); !strings.Contains(out, "vic") || !strings.Contains(out, "viewer") {
		t.Errorf("operators list: %s", out)
	}
	d.mustRun(0, "operators", "revoke", "vic", "--state", url)
	if out := d.mustRun(0, "operators", "list", "--state", url); strings.Contains(out, "vic") {
		t.Errorf("operators list after revoke: %s", out)
	}
}

// TestCLIEtcdUnreachable: no member answers: exit 1 within the dial
// timeout, naming the endpoints.
func TestCLIEtcdUnreachable(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	d := newCLIDir(t)
	var eps []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, l.Addr().String())
		l.Close()
	}
	url := "etcd://" + strings.Join(eps, ",") + "/reprise"
	for _, args := range [][]string{{"status"}, {"run", d.write("graph.yaml", gatesGraph)}} {
		start := time.Now()
		_, errs, code := d.run(append(args, "--state", url)...)
		took := time.Since(start)
		if code != exitError || !strings.Contains(errs, eps[0]) || !strings.Contains(errs, eps[1]) || !strings.Contains(errs, "unreachable") {
			t.Errorf("%s with etcd down: exit %d, want 1 naming %v:\n%s", args[0], code, eps, errs)
		}
		if took > 15*time.Second {
			t.Errorf("%s took %s with a 5 s dial timeout", args[0], took)
		}
	}
}

// TestCLIEtcdBadURL: a bad scheme, prefix or endpoint is a usage error.
func TestCLIEtcdBadURL(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	d := newCLIDir(t)
	for _, url := range []string{"http://127.0.0.1:2379/reprise", "etcd://127.0.0.1:2379/", "etcd://127.0.0.1:2379", "etcd://127.0.0.1/reprise", "etcd://127.0.0.1:2379/a//b"} {
		for _, cmd := range []string{"status", "runs", "log"} {
			_, errs, code := d.run(cmd, "--state", url)
			if code != exitUsage || !strings.Contains(errs, url) {
				t.Errorf("%s --state %s: exit %d, want 2 naming the URL:\n%s", cmd, url, code, errs)
			}
		}
	}
}

// TestCLIEtcdQuorumLostSIGINT: a run on etcd loses its quorum while a step
// runs; its next write waits (and says so), a SIGINT stops the process
// promptly all the same, and once the members are back `resume` finishes
// the run with every step done.
func TestCLIEtcdQuorumLostSIGINT(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	if testing.Short() {
		t.Skip("stops etcd members under a running reprise")
	}
	c := etcdtest.Start(t, 3)
	url := c.URL("quorum/reprise")
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: slow
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, "sleep 6; echo a >> done.txt"]}}
  - {id: b, kind: application, plugin: exec, depends_on: [a], with: {restore: [sh, -c, "echo b >> done.txt"]}}
`)
	// A lease longer than the test's quorum loss (a's 6 s, the second
	// before SIGINT, up to a third of the TTL since the last renewal): the
	// coordinator keeps its lead (it would cancel its session once the
	// lease is gone). Members stop at once (SIGKILL), well within a's 6 s.
	cmd := d.command("run", "-q", "--ttl", "20s", "--state", url, g)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, _ := d.run("status", "--json", "--state", url)
		if strings.Contains(out, `"state": "running"`) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("step a never started: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopAt := time.Now()
	var wg sync.WaitGroup
	for _, i := range []int{1, 2} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop(i) }()
	}
	wg.Wait()
	t.Logf("members stopped in %s", time.Since(stopAt))
	if _, err := os.Stat(d.path("done.txt")); err == nil {
		t.Skip("step a ended before the members were stopped (a slow machine): nothing to test")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(d.path("done.txt")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("step a never ended")
		}
	}
	time.Sleep(time.Second) // its success cannot be recorded: b must not start
	_ = cmd.Process.Signal(os.Interrupt)
	sigAt := time.Now()
	select {
	case <-done:
		t.Logf("reprise ended %s after SIGINT", time.Since(sigAt).Round(time.Millisecond))
	case <-time.After(60 * time.Second): // ~10 s (resigning is bounded to 5 s); the race detector on a loaded machine is far slower
		cmd.Process.Kill()
		t.Fatalf("reprise still running 60 s after SIGINT without a quorum:\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "waiting for etcd") {
		t.Errorf("stderr does not say it waited for etcd:\n%s", tail(errb.String(), 2000))
	}
	if done := readFile(t, d.path("done.txt")); done != "a\n" {
		t.Errorf("steps ran before the resume: %q (b must not start before a's success is durable)", done)
	}
	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(30 * time.Second)
	// The stopped coordinator's lead lasts until its lease expires:
	// --standby waits for that, then resumes.
	d.mustRun(0, "resume", "--standby", "--state", url)
	if s := d.status("--state", url); s.Status != "succeeded" || s.Done != 2 {
		t.Errorf("after resume: %+v", s)
	}
	if out := d.mustRun(0, "log", "--state", url, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
}

// TestRefuseLiveOnEtcd: mark, certify, cleanup and restore-point write to
// a stopped run; on etcd, a run whose graph has a leading coordinator is
// refused (the file's lock does that for a state file), and accepted once
// the coordinator resigned.
func TestRefuseLiveOnEtcd(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	c := sharedEtcd(t)
	u, err := etcdconn.Parse(c.URL("live/reprise"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run := state.Run{ID: "r1", GraphName: "g", Status: state.RunRunning}
	if err := st.CreateRun(context.Background(), run, []byte("x"), []state.NodeRecord{{ID: "a", State: state.NodePending}}); err != nil {
		t.Fatal(err)
	}
	if err := refuseLive(st, "r1"); err != nil {
		t.Fatalf("no coordinator: %v", err)
	}
	lead, err := cluster.Elect(context.Background(), cluster.ElectOptions{Client: st.Client(), Keys: cluster.NewKeys(u.Root()), Graph: "g", Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := refuseLive(st, "r1"); err == nil || !strings.Contains(err.Error(), "being run by a coordinator") {
		t.Fatalf("with a leading coordinator: %v", err)
	}
	if got := etcdLive(st); got != "r1" {
		t.Errorf("etcdLive = %q, want r1", got)
	}
	lead.Resign()
	if err := refuseLive(st, "r1"); err != nil {
		t.Fatalf("after the coordinator resigned: %v", err)
	}
}

// TestCLIEtcdMaxTxnOps: on a member started with --max-txn-ops=16 (below
// etcd's default of 128, which reprise assumes), a run of 40 nodes that
// targets one (39 records of skipped nodes written at its creation, a key
// each) fails without REPRISE_ETCD_MAX_TXN_OPS, saying what to set; with it
// set to 16 the same run succeeds and verifies. A bad value is a usage error naming
// the variable and the value.
func TestCLIEtcdMaxTxnOps(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	c := etcdtest.StartWith(t, 1, etcdtest.Options{Flags: []string{"--max-txn-ops=16"}})
	d := newCLIDir(t)
	var b strings.Builder
	b.WriteString("version: 1\nname: wide\nnodes:\n")
	for i := range 40 {
		fmt.Fprintf(&b, "  - {id: n%02d, kind: application, plugin: noop}\n", i)
	}
	g := d.write("graph.yaml", b.String())
	out, errs, code := d.run("run", "-q", "--state", c.URL("without/reprise"), "-t", "n00", g)
	if code == 0 || !strings.Contains(errs, "too many operations") || !strings.Contains(errs, envMaxTxnOps) {
		t.Errorf("run of 40 nodes on --max-txn-ops=16 without %s: exit %d, want a failure naming the variable:\n%s%s", envMaxTxnOps, code, out, tail(errs, 3000))
	}
	d.env = append(d.env, envMaxTxnOps+"=16")
	url := c.URL("with/reprise")
	d.mustRun(0, "run", "-q", "--state", url, "-t", "n00", g)
	if s := d.status("--state", url); s.Status != "succeeded" || s.Total != 40 || s.Counts["succeeded"] != 1 || s.Counts["skipped"] != 39 {
		t.Errorf("status with %s=16: %+v", envMaxTxnOps, s)
	}
	if out := d.mustRun(0, "log", "--state", url, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
	for _, v := range []string{"abc", "0", "7", "-16", "1e3"} {
		d.env = []string{envMaxTxnOps + "=" + v}
		_, errs, code := d.run("status", "--state", url)
		if code != exitUsage || !strings.Contains(errs, envMaxTxnOps) || !strings.Contains(errs, strconv.Quote(v)) {
			t.Errorf("%s=%s: exit %d, want 2 naming it:\n%s", envMaxTxnOps, v, code, errs)
		}
	}
}
