package cluster_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/buildtest"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// retryGraph: tape fails until the file "fixed" exists, db waits for it;
// slow (until the file "go" exists) and the gate keep a `run --wait` going
// while operators act. Each process has its own working folder: the steps
// use dir.
func retryGraph(dir string) string {
	return fmt.Sprintf(`version: 1
name: retry-etcd
defaults: {retries: 0}
nodes:
  - {id: slow, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'while [ ! -f %[1]s/go ]; do sleep 0.1; done']}}
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> %[1]s/ran.txt; test -f %[1]s/fixed']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> %[1]s/ran.txt']}}
  - {id: gate, kind: data, plugin: manual}
`, dir)
}

// TestRetryAfterFailover runs the coordinators as real `reprise run --wait`
// processes on an etcd state: the leader is SIGKILLed, the standby takes
// the lead and goes on with the run; `reprise retry` from a third process
// then reaches the standby through etcd (it says so, naming it) and the
// failed node runs again, once, there, with what it blocked after it.
func TestRetryAfterFailover(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url := c.URL("retryfailover")
	dir := t.TempDir()
	graph := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(graph, []byte(retryGraph(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := func() string { b, _ := os.ReadFile(filepath.Join(dir, "ran.txt")); return string(b) }
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	leader := reprise(t, "run", "--wait", "-q", "--ttl", "2s", "--state", url, graph)
	waitFor(t, 60*time.Second, "tape failed under the leader", func() bool { return strings.Count(ran(), "tape") == 1 })
	standby := reprise(t, "run", "--wait", "-q", "--ttl", "2s", "--standby", "--state", url, graph)
	waitFor(t, 60*time.Second, "the standby waits", func() bool { return strings.Contains(standby.output(), "waiting to take over") })
	leader.cmd.Process.Kill()
	leader.wait(t, 30*time.Second)
	waitFor(t, 60*time.Second, "the standby took over", func() bool { return strings.Contains(standby.output(), "took over the lead") })
	// The standby resumes the run: tape (failed) runs again, and fails.
	waitFor(t, 60*time.Second, "tape failed again under the standby", func() bool { return strings.Count(ran(), "tape") == 2 })
	var run string
	waitFor(t, 60*time.Second, "tape recorded failed", func() bool {
		st := reprise(t, "status", "--json", "--state", url)
		st.wait(t, 60*time.Second)
		var s struct {
			Run   string `json:"run"`
			Nodes []struct{ ID, State string }
		}
		if json.Unmarshal([]byte(st.output()), &s) != nil {
			return false
		}
		run = s.Run
		for _, n := range s.Nodes {
			if n.ID == "tape" && n.State == "failed" {
				return true
			}
		}
		return false
	})
	touch("fixed")
	retry := reprise(t, "retry", run, "tape", "--by", "alice", "--state", url)
	if code := retry.wait(t, 60*time.Second); code != 0 || !strings.Contains(retry.output(), "tape reset to pending by alice") ||
		!strings.Contains(retry.output(), fmt.Sprintf(":%d (through etcd)", standby.cmd.Process.Pid)) {
		t.Fatalf("retry after the failover: exit %d, want it applied by the standby (pid %d):\n%s\nstandby:\n%s",
			code, standby.cmd.Process.Pid, retry.output(), standby.output())
	}
	waitFor(t, 60*time.Second, "db ran", func() bool { return strings.Contains(ran(), "db") })
	touch("go")
	approve := reprise(t, "approve", run, "gate", "--by", "claire", "--state", url)
	if code := approve.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("approve: exit %d:\n%s", code, approve.output())
	}
	if code := standby.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("the standby's run: exit %d:\n%s", code, standby.output())
	}
	if got := ran(); got != "tape\ntape\ntape\ndb\n" {
		t.Errorf("steps ran: %q, want tape three times (leader, standby's resume, retry) and db once", got)
	}
}

// cliRun runs bin/reprise ARGS to its end (in its own working folder) with
// env added, and returns its stdout, stderr and exit code.
func cliRun(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	if buildErr != nil {
		t.Skipf("bin/reprise not built: %v", buildErr)
	}
	root, err := buildtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "bin", "reprise"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("reprise %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// nodeStateOf reads node's state in run from `reprise status --json`.
func nodeStateOf(t *testing.T, url, run, node string) string {
	t.Helper()
	out, _, code := cliRun(t, nil, "status", "--json", "--state", url, run)
	var s struct {
		Nodes []struct{ ID, State string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
		return ""
	}
	for _, n := range s.Nodes {
		if n.ID == node {
			return n.State
		}
	}
	return ""
}

// TestRetryThroughEtcd: a coordinator (`reprise run --wait` on an etcd
// state) leads a run whose tape step failed; `reprise retry` from another
// process reaches it through etcd: tape runs again there at once and db
// after it, the journal names the operator. A mistyped node is refused by
// the coordinator with the nearest id. Once the state has operators, a
// retry without a token, with a viewer's token, with a wrong token or with
// a --by naming someone else is refused, each saying why, and nothing
// runs; an operator's token (from REPRISE_TOKEN_FILE) is accepted and
// journaled with the operator's name; an approval needs an approver's (or
// admin's) token. Once the run has ended (no coordinator leads), retry
// resumes it here, as on one machine.
func TestRetryThroughEtcd(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url := c.URL("retrycli")
	dir := t.TempDir()
	graph := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(graph, []byte(retryGraph(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := func() string { b, _ := os.ReadFile(filepath.Join(dir, "ran.txt")); return string(b) }
	touch := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := cliRun(t, nil, append(args, "--state", url)...)
		if code != 0 {
			t.Fatalf("reprise %v: exit %d\n%s%s", args, code, out, errs)
		}
		return out
	}
	coordinator := reprise(t, "run", "--wait", "-q", "--ttl", "5s", "--state", url, graph)
	var run string
	waitFor(t, 60*time.Second, "tape failed in a live run", func() bool {
		out, _, _ := cliRun(t, nil, "status", "--json", "--state", url)
		var s struct {
			Run string `json:"run"`
		}
		if json.Unmarshal([]byte(out), &s) != nil || s.Run == "" {
			return false
		}
		run = s.Run
		return nodeStateOf(t, url, run, "tape") == "failed"
	})

	out, errs, code := cliRun(t, nil, "retry", run, "tpe", "--by", "alice", "--state", url)
	if code != 1 || !strings.Contains(errs, "coordinator") || !strings.Contains(errs, `did you mean "tape"`) {
		t.Errorf("retry of a mistyped node: exit %d, want 1 with the coordinator's refusal:\n%s%s", code, out, errs)
	}
	touch("fixed", "")
	out, errs, code = cliRun(t, nil, "retry", run, "tape", "--by", "alice", "--state", url)
	if code != 0 || !strings.Contains(out, "tape reset to pending by alice") || !strings.Contains(out, "they run again now") ||
		!strings.Contains(errs, "retry applied by coordinator") {
		t.Fatalf("retry through etcd: exit %d\n%s%s", code, out, errs)
	}
	waitFor(t, 60*time.Second, "db succeeded", func() bool { return nodeStateOf(t, url, run, "db") == "succeeded" })
	if got := ran(); got != "tape\ntape\ndb\n" {
		t.Errorf("steps ran: %q, want tape twice then db", got)
	}
	if out := must("log", run, "--node", "tape"); !strings.Contains(out, "by alice") {
		t.Errorf("the journal does not name the operator:\n%s", out)
	}

	// Operators: from now on a command through etcd needs a token (and
	// adding an operator after the first, an admin's).
	admin := []string{"REPRISE_TOKEN=" + strings.TrimSpace(must("operators", "add", "root", "--role", "admin"))}
	addOperator := func(name, role string) string {
		t.Helper()
		out, errs, code := cliRun(t, admin, "operators", "add", name, "--role", role, "--state", url)
		if code != 0 {
			t.Fatalf("operators add %s with an admin's token: exit %d\n%s%s", name, code, out, errs)
		}
		return strings.TrimSpace(out)
	}
	opTok := addOperator("ops", "operator")
	viewTok := addOperator("vic", "viewer")
	apprTok := addOperator("claire", "approver")
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
		args := append([]string{"retry", run, "db", "--state", url}, tc.args...)
		out, errs, code := cliRun(t, tc.env, args...)
		if code != 1 || !strings.Contains(errs, "refused") || !strings.Contains(errs, tc.want) {
			t.Errorf("retry with %s: exit %d, want 1 refused with %q:\n%s%s", tc.name, code, tc.want, out, errs)
		}
		if strings.Contains(errs, opTok) || strings.Contains(out, opTok) {
			t.Errorf("retry with %s prints the token", tc.name)
		}
	}
	if got := ran(); got != "tape\ntape\ndb\n" {
		t.Errorf("a refused retry ran something: %q", got)
	}
	tokFile := touch("ops.token", opTok+"\n")
	out, errs, code = cliRun(t, []string{"REPRISE_TOKEN_FILE=" + tokFile}, "retry", run, "db", "--state", url)
	if code != 0 || !strings.Contains(out, "db reset to pending by ops") {
		t.Fatalf("retry with an operator's token: exit %d\n%s%s", code, out, errs)
	}
	waitFor(t, 60*time.Second, "db ran again", func() bool { return strings.Count(ran(), "db") == 2 })
	waitFor(t, 60*time.Second, "db succeeded again", func() bool { return nodeStateOf(t, url, run, "db") == "succeeded" })
	if out := must("log", run, "--node", "db"); !strings.Contains(out, "by ops") {
		t.Errorf("the journal does not name the token's operator:\n%s", out)
	}
	// The gate: an operator may not approve, an approver may.
	touch("go", "")
	out, errs, code = cliRun(t, []string{"REPRISE_TOKEN=" + opTok}, "approve", run, "gate", "--by", "ops", "--state", url)
	if code != 1 || !strings.Contains(errs, "operator ops (role operator) may not approve") {
		t.Errorf("approve by an operator: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = cliRun(t, []string{"REPRISE_TOKEN=" + apprTok}, "approve", run, "gate", "--by", "claire", "--comment", "checked", "--state", url)
	if code != 0 {
		t.Fatalf("approve by an approver: exit %d\n%s%s", code, out, errs)
	}
	if code := coordinator.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("the coordinator's run: exit %d\n%s", code, coordinator.output())
	}
	// No coordinator leads now (the run succeeded): a retry does what it
	// does on a stopped run on one machine, it resumes the run here with
	// the node reset (a node done runs again only when asked: retry asks),
	// with the same check of the token (cmd/reprise TestEtcdDirectAuthorization).
	out, errs, code = cliRun(t, []string{"REPRISE_TOKEN=" + opTok}, "retry", run, "tape", "--state", url)
	if code != 0 || strings.Contains(errs, "through etcd") || !strings.Contains(out, "succeeded") {
		t.Fatalf("retry with no coordinator: exit %d\n%s%s", code, out, errs)
	}
	if got := ran(); got != "tape\ntape\ndb\ndb\ntape\n" {
		t.Errorf("steps ran: %q, want tape once more, alone", got)
	}
	if out := must("log", run, "--node", "tape"); !strings.Contains(out, "by ops") {
		t.Errorf("the journal does not name the operator of the retry:\n%s", out)
	}
	if out := must("log", run, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
}
