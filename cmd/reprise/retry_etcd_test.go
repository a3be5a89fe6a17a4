package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// retryEtcdGraph: tape fails until the file "fixed" exists, db waits for
// it; slow (until the file "go" exists) and the gate keep a `run --wait`
// going while operators act.
const retryEtcdGraph = `version: 1
name: retry-etcd
defaults: {retries: 0}
nodes:
  - {id: slow, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'while [ ! -f go ]; do sleep 0.1; done']}}
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
  - {id: gate, kind: data, plugin: manual}
`

// runWith runs reprise ARGS with extra environment and returns stdout,
// stderr and the exit code.
func (d *cliDir) runWith(env []string, args ...string) (string, string, int) {
	d.t.Helper()
	cmd := d.command(args...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("reprise %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// startProcess starts `reprise ARGS` (a coordinator: run --wait on etcd)
// and returns a function that waits for its exit code and stderr, one that
// kills it (SIGKILL), and its pid and stderr so far.
func (d *cliDir) startProcess(args ...string) (wait func(limit time.Duration) (int, string), kill func(), pid int, stderr func() string) {
	d.t.Helper()
	cmd := d.command(args...)
	errb := &lockedBuffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ended := false
	kill = func() {
		if !ended {
			_ = cmd.Process.Kill()
			<-done
			ended = true
		}
	}
	d.t.Cleanup(kill)
	wait = func(limit time.Duration) (int, string) {
		select {
		case err := <-done:
			ended = true
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), errb.String()
			}
			return 0, errb.String()
		case <-time.After(limit):
			kill()
			d.t.Fatalf("reprise %v still running after %s:\n%s", args, limit, tail(errb.String(), 3000))
			return -1, ""
		}
	}
	return wait, kill, cmd.Process.Pid, errb.String
}

// lockedBuffer is a bytes.Buffer written by a process and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// liveRunOn waits until a run of the state is live and returns its id.
func (d *cliDir) liveRunOn() string {
	d.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if out, _, code := d.run("status", "--json"); code == 0 && strings.Contains(out, `"id": "tape"`) {
			if s := d.status(); s.Run != "" && d.nodeStates(s.Run)["tape"] == "failed" {
				return s.Run
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatal("tape never failed in a live run")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCLIRetryThroughEtcd: a coordinator (run --wait on an etcd state)
// leads a run whose tape step failed; `reprise retry` from another process
// reaches it through etcd: tape runs again there at once and db after it,
// the journal names the operator. A mistyped node is refused by the
// coordinator with the nearest id. Once the state has operators, a retry
// without a token, with a viewer's token, with a wrong token or with a
// --by naming someone else is refused, each saying why, and nothing runs;
// an operator's token is accepted and journaled with the operator's name;
// an approval needs an approver's (or admin's) token. Once the run has
// ended (no coordinator leads), retry resumes it here, as on one machine.
func TestCLIRetryThroughEtcd(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	c := etcdtest.Start(t, 3)
	d := newCLIDir(t)
	d.env = append(d.env, "REPRISE_STATE="+c.URL("retry/reprise"))
	g := d.write("graph.yaml", retryEtcdGraph)
	wait, _, _, _ := d.startProcess("run", "--wait", "--quiet", "--ttl", "5s", g)
	run := d.liveRunOn()

	out, errs, code := d.runWith(nil, "retry", run, "tpe", "--by", "alice")
	if code != exitError || !strings.Contains(errs, "coordinator") || !strings.Contains(errs, `did you mean "tape"`) {
		t.Errorf("retry of a mistyped node: exit %d, want 1 with the coordinator's refusal:\n%s%s", code, out, errs)
	}
	d.write("fixed", "")
	out, errs, code = d.runWith(nil, "retry", run, "tape", "--by", "alice")
	if code != 0 || !strings.Contains(out, "tape reset to pending by alice") || !strings.Contains(out, "they run again now") ||
		!strings.Contains(errs, "retry applied by coordinator") {
		t.Fatalf("retry through etcd: exit %d\n%s%s", code, out, errs)
	}
	d.waitNode(run, "db", "succeeded")
	if got := readFile(t, d.path("ran.txt")); got != "tape\ntape\ndb\n" {
		t.Errorf("steps ran: %q, want tape twice then db", got)
	}
	if out := d.mustRun(0, "log", run, "--node", "tape"); !strings.Contains(out, "by alice") {
		t.Errorf("the journal does not name the operator:\n%s", out)
	}

	// Operators: from now on a command through etcd needs a token.
	opTok := strings.TrimSpace(d.mustRun(0, "operators", "add", "ops", "--role", "operator"))
	viewTok := strings.TrimSpace(d.mustRun(0, "operators", "add", "vic", "--role", "viewer"))
	apprTok := strings.TrimSpace(d.mustRun(0, "operators", "add", "claire", "--role", "approver"))
	wrong := opTok[:len(opTok)-4] + "AAAA"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no token", nil, nil, "needs an operator's token"},
		{"a viewer", []string{"REPRISE_TOKEN=" + viewTok}, nil, "operator vic (role viewer) may not retry"},
		{"a wrong token", []string{"REPRISE_TOKEN=" + wrong}, nil, "unknown or revoked token"},
		{"someone else's name", []string{"REPRISE_TOKEN=" + opTok}, []string{"--by", "alice"}, `--by "alice" but the token is operator ops's`},
	} {
		args := append([]string{"retry", run, "db"}, tc.args...)
		out, errs, code := d.runWith(tc.env, args...)
		if code != exitError || !strings.Contains(errs, "refused") || !strings.Contains(errs, tc.want) {
			t.Errorf("retry with %s: exit %d, want 1 refused with %q:\n%s%s", tc.name, code, tc.want, out, errs)
		}
		if strings.Contains(errs, opTok) || strings.Contains(out, opTok) {
			t.Errorf("retry with %s prints the token", tc.name)
		}
	}
	if got := readFile(t, d.path("ran.txt")); got != "tape\ntape\ndb\n" {
		t.Errorf("a refused retry ran something: %q", got)
	}
	tokFile := d.write("ops.token", opTok+"\n")
	out, errs, code = d.runWith([]string{"REPRISE_TOKEN_FILE=" + tokFile}, "retry", run, "db")
	if code != 0 || !strings.Contains(out, "db reset to pending by ops") {
		t.Fatalf("retry with an operator's token: exit %d\n%s%s", code, out, errs)
	}
	d.waitNode(run, "db", "succeeded")
	if got := readFile(t, d.path("ran.txt")); got != "tape\ntape\ndb\ndb\n" {
		t.Errorf("steps ran: %q, want db again", got)
	}
	if out := d.mustRun(0, "log", run, "--node", "db"); !strings.Contains(out, "by ops") {
		t.Errorf("the journal does not name the token's operator:\n%s", out)
	}
	// The gate: an operator may not approve, an approver may.
	d.write("go", "")
	out, errs, code = d.runWith([]string{"REPRISE_TOKEN=" + opTok}, "approve", run, "gate", "--by", "ops")
	if code != exitError || !strings.Contains(errs, "operator ops (role operator) may not approve") {
		t.Errorf("approve by an operator: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = d.runWith([]string{"REPRISE_TOKEN=" + apprTok}, "approve", run, "gate", "--by", "claire", "--comment", "checked")
	if code != 0 {
		t.Fatalf("approve by an approver: exit %d\n%s%s", code, out, errs)
	}
	if code, errs := wait(120 * time.Second); code != 0 {
		t.Fatalf("the coordinator's run: exit %d\n%s", code, tail(errs, 3000))
	}
	// No coordinator leads now (the run succeeded): a retry does what it
	// does on a stopped run on one machine, it resumes the run here with
	// the node reset (a node done runs again only when asked: retry asks).
	out, errs, code = d.runWith(nil, "retry", run, "tape", "--by", "bob")
	if code != 0 || strings.Contains(errs, "through etcd") || !strings.Contains(out, "succeeded") {
		t.Fatalf("retry with no coordinator: exit %d\n%s%s", code, out, errs)
	}
	if got := readFile(t, d.path("ran.txt")); got != "tape\ntape\ndb\ndb\ntape\n" {
		t.Errorf("steps ran: %q, want tape once more, alone", got)
	}
	if out := d.mustRun(0, "log", run, "--node", "tape"); !strings.Contains(out, "by bob") {
		t.Errorf("the journal does not name the operator of the retry:\n%s", out)
	}
	if out := d.mustRun(0, "log", run, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
}

// TestCLIRetryAfterFailover: the coordinator leading the run is SIGKILLed;
// the standby takes the lead and goes on with the run; a retry sent then
// from another process reaches the standby through etcd (it names it) and
// the node runs again once there.
func TestCLIRetryAfterFailover(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	c := etcdtest.Start(t, 3)
	d := newCLIDir(t)
	d.env = append(d.env, "REPRISE_STATE="+c.URL("failover/reprise"))
	g := d.write("graph.yaml", retryEtcdGraph)
	_, killLeader, _, _ := d.startProcess("run", "--wait", "--quiet", "--ttl", "2s", g)
	run := d.liveRunOn()
	wait, _, standbyPID, standbyErr := d.startProcess("run", "--wait", "--quiet", "--ttl", "2s", "--standby", g)
	waitUntil(t, 60*time.Second, "the standby waits", func() bool { return strings.Contains(standbyErr(), "waiting to take over") })
	killLeader()
	waitUntil(t, 60*time.Second, "the standby took over", func() bool { return strings.Contains(standbyErr(), "took over the lead") })
	// The standby resumes the run: tape (failed) runs again, and fails.
	waitUntil(t, 60*time.Second, "tape failed again under the standby", func() bool {
		return strings.Count(readFile(t, d.path("ran.txt")), "tape") == 2 && d.nodeStates(run)["tape"] == "failed"
	})
	before := strings.Count(readFile(t, d.path("ran.txt")), "tape")
	d.write("fixed", "")
	out, errs, code := d.runWith(nil, "retry", run, "tape", "--by", "alice")
	if code != 0 || !strings.Contains(out, "tape reset to pending by alice") || !strings.Contains(errs, fmt.Sprintf(":%d (through etcd)", standbyPID)) {
		t.Fatalf("retry after the failover: exit %d, want it applied by the standby (pid %d)\n%s%s\nstandby:\n%s", code, standbyPID, out, errs, tail(standbyErr(), 3000))
	}
	d.waitNode(run, "db", "succeeded")
	ran := readFile(t, d.path("ran.txt"))
	if strings.Count(ran, "tape") != before+1 || strings.Count(ran, "db") != 1 {
		t.Errorf("steps ran: %q, want tape once more (%d before) and db once", ran, before)
	}
	d.write("go", "")
	d.mustRun(0, "approve", run, "gate", "--by", "claire")
	if code, errs := wait(120 * time.Second); code != 0 {
		t.Fatalf("the standby's run: exit %d\n%s", code, tail(errs, 3000))
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
