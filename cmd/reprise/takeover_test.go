package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/cluster"
)

// takeoverGraph: a done, b waiting for the file go, c after b; each step
// that ends appends its id to done.txt.
const takeoverGraph = `version: 1
name: %s
defaults: {retries: 0}
nodes:
  - {id: a, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, "echo a >> done.txt"]}}
  - {id: b, kind: application, plugin: exec, depends_on: [a], with: {restore: [sh, -c, "while [ ! -f go ]; do sleep 0.1; done; echo b >> done.txt"]}}
  - {id: c, kind: application, plugin: exec, depends_on: [b], with: {restore: [sh, -c, "echo c >> done.txt"]}}
`

// bgProc is a reprise process of a test, running in the background.
type bgProc struct {
	cmd  *exec.Cmd
	errb syncBuffer
	done chan struct{}
}

// startBG starts reprise ARGS in d with env added to d.env (killed when
// the test ends).
func startBG(t *testing.T, d *cliDir, env []string, args ...string) *bgProc {
	t.Helper()
	p := &bgProc{cmd: d.command(args...), done: make(chan struct{})}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// wait waits for p's end (killing it and failing after limit) and returns
// its exit code.
func (p *bgProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not end within %s:\n%s", p.cmd.Args[1:], limit, tail(p.errb.String(), 3000))
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitOutput waits until p's stderr holds s.
func (p *bgProc) waitOutput(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(p.errb.String(), s); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v never said %q:\n%s", p.cmd.Args[1:], s, tail(p.errb.String(), 3000))
		}
	}
}

// runKeys returns the keys of the runs and their work under prefix with
// their ModRevision: what a coordinator writes to a run.
func runKeys(t *testing.T, cli *clientv3.Client, prefix string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, sub := range []string{"runs/", "work/"} {
		resp, err := cli.Get(context.Background(), "/"+prefix+"/"+sub, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			m[string(kv.Key)] = kv.ModRevision
		}
	}
	return m
}

// sameKeys says how a and b differ ("" when they do not).
func sameKeys(a, b map[string]int64) string {
	var diff []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			diff = append(diff, "deleted "+k)
		} else if w != v {
			diff = append(diff, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, "added "+k)
		}
	}
	return strings.Join(diff, "\n")
}

// leaderAndStandby starts a leader of takeoverGraph's run on url (env:
// its token), waits until a is done and b runs, then starts a standby
// (senv) and waits until it waits. It returns them and the run's id.
func leaderAndStandby(t *testing.T, d *cliDir, url, g string, ttl string, env, senv []string) (leader, standby *bgProc, runID string) {
	t.Helper()
	leader, runID = startLeader(t, d, url, g, ttl, env)
	standby = startBG(t, d, senv, "run", "-q", "--standby", "--ttl", ttl, "--state", url, g)
	standby.waitOutput(t, "waiting to take over")
	return leader, standby, runID
}

// startLeader starts a leader of takeoverGraph's run on url (env: its
// token) and waits until a is done and b runs; it returns it and the
// run's id.
func startLeader(t *testing.T, d *cliDir, url, g string, ttl string, env []string) (leader *bgProc, runID string) {
	t.Helper()
	leader = startBG(t, d, env, "run", "-q", "--ttl", ttl, "--state", url, g)
	for deadline := time.Now().Add(60 * time.Second); runID == ""; time.Sleep(100 * time.Millisecond) {
		out, _, _ := d.run("status", "--json", "--state", url)
		var s statusJSON
		if json.Unmarshal([]byte(out), &s) == nil && s.Status == "running" {
			runID = s.Run
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's run never started:\n%s", tail(leader.errb.String(), 3000))
		}
	}
	d.waitNode(runID, "b", "running")
	return leader, runID
}

// TestStandbyTakeoverRechecksToken: on an etcd state with operators, a
// standby coordinator's token is checked at its start and again when it
// takes over. A leader (operator lead) runs; a standby (operator stand)
// waits; stand is revoked meanwhile, and the leader SIGKILLed: the
// standby, once it wins the lead, exits 1 naming the run, the operator
// and why, writes nothing to the run, and gives the lead up: status shows
// no coordinator, with the resume to type. A valid operator's resume then
// ends the run, without running a again, journaled as resumed by them.
func TestStandbyTakeoverRechecksToken(t *testing.T) {
	t.Parallel() // waits on etcd and leases
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("takeover-token-%d", time.Now().UnixNano())
	url := c.URL(prefix)
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER=", "REPRISE_STATE=" + url}
	base := d.env
	g := d.write("graph.yaml", fmt.Sprintf(takeoverGraph, "recheck"))

	root := strings.TrimSpace(d.mustRun(0, "operators", "add", "root", "--role", "admin"))
	d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+root)
	lead := strings.TrimSpace(d.mustRun(0, "operators", "add", "lead", "--role", "operator"))
	stand := strings.TrimSpace(d.mustRun(0, "operators", "add", "stand", "--role", "operator"))
	d.env = base

	leader, standby, runID := leaderAndStandby(t, d, url, g, "2s", []string{"REPRISE_TOKEN=" + lead}, []string{"REPRISE_TOKEN=" + stand})
	d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+root)
	if out := d.mustRun(0, "operators", "revoke", "stand"); !strings.Contains(out, "operator stand revoked by admin root") {
		t.Errorf("operators revoke: %s", out)
	}
	d.env = base

	cli := c.Client(t)
	leader.cmd.Process.Kill()
	leader.wait(t, 10*time.Second)
	before := runKeys(t, cli, prefix) // the leader's last writes; the standby takes over after its lease (2 s)
	code := standby.wait(t, 60*time.Second)
	errs := standby.errb.String()
	if code != exitError {
		t.Fatalf("the standby of a revoked operator: exit %d, want 1:\n%s", code, tail(errs, 3000))
	}
	for _, want := range []string{
		"standby: took over the lead of graph recheck",
		fmt.Sprintf("standby: taking over run %s of graph recheck on %s: refused: operator stand was revoked since this standby started (no longer among the operators)", runID, url),
		"this standby wrote nothing to the run and gave the lead up (another standby may take over)",
		fmt.Sprintf("`reprise resume %s` with the token of an operator who may resume (role operator or admin) goes on with it", runID),
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("the standby's refusal does not say %q:\n%s", want, tail(errs, 3000))
		}
	}
	if strings.Contains(errs, "going on with run") || strings.Contains(errs, "rpr_") {
		t.Errorf("the refused standby went on, or printed a token:\n%s", errs)
	}
	if diff := sameKeys(before, runKeys(t, cli, prefix)); diff != "" {
		t.Errorf("the refused standby wrote to the run:\n%s", diff)
	}
	status := d.mustRun(0, "status", runID)
	if want := "coordinator: NONE leads graph recheck: the run goes on once one takes it (reprise resume " + runID; !strings.Contains(status, want) {
		t.Errorf("status after the refused takeover lacks\n%s\nin:\n%s", want, status)
	}
	if s := d.status(runID); s.Status != "interrupted" {
		t.Errorf("the run after the refused takeover: %s, want interrupted (recorded running, its process gone)", s.Status)
	}

	// A valid operator's resume ends it; a, done, does not run again.
	d.write("go", "")
	d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+lead)
	d.mustRun(0, "resume", runID, "-q")
	d.env = base
	if s := d.status(runID); s.Status != "succeeded" || s.Done != 3 {
		t.Errorf("after the resume: %s, %d done", s.Status, s.Done)
	}
	done := readFile(t, d.path("done.txt"))
	if n := strings.Count(done, "a\n"); n != 1 {
		t.Errorf("a ran %d times, want once (done before the leader died): %q", n, done)
	}
	if n := strings.Count(done, "c\n"); n != 1 {
		t.Errorf("c ran %d times, want once: %q", n, done)
	}
	journal := d.mustRun(0, "log", runID)
	if l := journalLine(journal, "run-resumed"); !strings.Contains(l, " by lead:") {
		t.Errorf("run-resumed does not say by lead: %q\n%s", l, journal)
	}
	if strings.Contains(journal, "stand") {
		t.Errorf("the journal names the revoked standby's operator:\n%s", journal)
	}
}

// TestStandbyTakeoverOtherProtocolWork: a standby that wins the lead of a
// run whose work in etcd was written by coordinators of another protocol
// version (an item of a build before versions, an offer batch of a later
// one) does not take it over: it exits 1 naming the run, the versions
// found and what to do, writes nothing to the run and gives the lead up
// (status: no coordinator); a resume of this build is refused the same
// way. Once that work is deleted as the error says, a resume ends the run
// without running a again. (The token: TestStandbyTakeoverRechecksToken;
// this state has no operators.)
func TestStandbyTakeoverOtherProtocolWork(t *testing.T) {
	t.Parallel()
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("takeover-proto-%d", time.Now().UnixNano())
	url := c.URL(prefix)
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER=", "REPRISE_STATE=" + url}
	g := d.write("graph.yaml", fmt.Sprintf(takeoverGraph, "proto"))
	// A lease long enough to write the old work between the leader's
	// death and the takeover.
	leader, standby, runID := leaderAndStandby(t, d, url, g, "6s", nil, nil)
	cli := c.Client(t)
	leader.cmd.Process.Kill()
	leader.wait(t, 10*time.Second)

	k := cluster.NewKeys(prefix)
	later := cluster.ProtocolVersion + 1
	it, _ := json.Marshal(cluster.Item{Call: "old-b", Op: "restore", Zone: "core", By: "old-coord", Req: step.Request{RunID: runID, NodeID: "b"}})
	ob, _ := json.Marshal(cluster.OfferBatch{By: "new-coord", Protocol: later, Run: runID,
		Items: []cluster.Item{{Call: "new-c", Op: "restore", Req: step.Request{NodeID: "c"}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Txn(ctx).Then(
		clientv3.OpPut(k.Item(runID, "b"), strings.Replace(string(it), `"protocol":0,`, "", 1)),
		clientv3.OpPut(k.Offer(runID, "core-9", "o1"), string(ob)),
	).Commit(); err != nil {
		t.Fatal(err)
	}
	before := runKeys(t, cli, prefix)
	code := standby.wait(t, 60*time.Second)
	errs := standby.errb.String()
	if code != exitError {
		t.Fatalf("the standby finding work of other protocols: exit %d, want 1:\n%s", code, tail(errs, 3000))
	}
	work := fmt.Sprintf("/%s/work/runs/%s/", prefix, runID)
	for _, want := range []string{
		"standby: took over the lead of graph proto",
		fmt.Sprintf("run %s: work in flight in etcd written by another protocol than this reprise's (protocol %d): protocol 0 (a build from before protocol versions) (1 item); protocol %d (1 offer batch)", runID, cluster.ProtocolVersion, later),
		fmt.Sprintf("a reprise build of protocol 0 or %d (`reprise --version` shows a build's, `reprise agent list` each agent's): `reprise resume %s`", later, runID),
		"`etcdctl del --prefix " + work + "`",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("the standby's refusal does not say %q:\n%s", want, tail(errs, 3000))
		}
	}
	if strings.Contains(errs, "going on with run") {
		t.Errorf("the standby went on with the run:\n%s", errs)
	}
	if diff := sameKeys(before, runKeys(t, cli, prefix)); diff != "" {
		t.Errorf("the refused standby wrote to the run:\n%s", diff)
	}
	if status := d.mustRun(0, "status", runID); !strings.Contains(status, "coordinator: NONE leads graph proto") {
		t.Errorf("status after the refused takeover:\n%s", status)
	}
	// A resume of this build is refused alike, and writes nothing.
	if out, errs, code := d.run("resume", runID, "-q"); code != exitError || !strings.Contains(errs, "work in flight in etcd written by another protocol") {
		t.Errorf("resume with work of other protocols: exit %d, want 1 refused:\n%s%s", code, out, errs)
	}
	if diff := sameKeys(before, runKeys(t, cli, prefix)); diff != "" {
		t.Errorf("the refused resume wrote to the run:\n%s", diff)
	}

	// What the error says: the work deleted, a resume ends the run.
	if _, err := cli.Delete(ctx, work, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	d.write("go", "")
	d.mustRun(0, "resume", runID, "-q")
	if s := d.status(runID); s.Status != "succeeded" || s.Done != 3 {
		t.Errorf("after the resume: %s, %d done", s.Status, s.Done)
	}
	if done := readFile(t, d.path("done.txt")); strings.Count(done, "a\n") != 1 || strings.Count(done, "c\n") != 1 {
		t.Errorf("a or c ran other than once: %q", done)
	}
	if regexp.MustCompile(`old-coord|new-coord`).MatchString(d.mustRun(0, "log", runID)) {
		t.Errorf("the journal speaks of the other protocols' coordinators")
	}
}

// TestTakeoverRecheck: the decision a standby makes again when it takes
// over (sessionAuth.recheck), against the operators now in etcd, for each
// way they may have changed since it started: unchanged (it goes on,
// journaling its operator), revoked, given a new token, role lowered
// below operator, and operators added to a state that had none (with and
// without a token); an etcd state with no operators and a state file
// check nothing.
func TestTakeoverRecheck(t *testing.T) {
	t.Parallel()
	c := sharedEtcd(t)
	url := c.URL(fmt.Sprintf("takeover-recheck-%d", time.Now().UnixNano()))
	st, err := openEtcd(url, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(name string, role auth.Role) string {
		t.Helper()
		op, tok, err := auth.NewOperator(name, role, "root", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutOperator(op); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	const target = "run R1 of graph g"
	// No operators: nothing checked, with or without a token.
	for _, a := range []*sessionAuth{{statePath: url, act: actRun, by: "alice"}, {statePath: "state.db", act: actRun, by: "alice"}} {
		if err := a.recheck(target, "R1"); err != nil || a.by != "alice" {
			t.Errorf("%s without operators: %v (by %q)", a.statePath, err, a.by)
		}
	}
	amy := put("amy", auth.RoleOperator)
	if err := (&sessionAuth{statePath: "state.db", act: actRun}).recheck(target, "R1"); err != nil {
		t.Errorf("a state file: %v", err)
	}
	// Operators added since a start without them: the token given then
	// decides, and names who is journaled.
	a := &sessionAuth{statePath: url, act: actRun, by: "someone", token: amy}
	if err := a.recheck(target, "R1"); err != nil || a.by != "amy" {
		t.Errorf("operators added since, amy's token: %v (by %q, want amy)", err, a.by)
	}
	refusals := []struct {
		name string
		a    *sessionAuth
		prep func()
		want string
	}{
		{"operators added since, no token", &sessionAuth{statePath: url, act: actRun}, nil,
			"this state has operators (added since this standby started) and this standby was given no operator's token"},
		{"operators added since, a token of none", &sessionAuth{statePath: url, act: actRun, token: "rpr_0011223344556677_nope"}, nil,
			"its token is no operator's (unknown or revoked token)"},
		{"role lowered", &sessionAuth{statePath: url, act: actRun, op: "vic", by: "vic"}, nil,
			"operator vic is now role viewer, who may not resume"},
		{"a new token", &sessionAuth{statePath: url, act: actRun, op: "nat", by: "nat"}, nil,
			"operator nat's token was revoked since this standby started (nat was given a new one)"},
		{"revoked", &sessionAuth{statePath: url, act: actRun, op: "rex", by: "rex"}, nil,
			"operator rex was revoked since this standby started (no longer among the operators)"},
	}
	// vic started as an operator; now a viewer (same token, as a direct
	// write of the record would leave it).
	vicTok := put("vic", auth.RoleOperator)
	ops, _ := st.Operators()
	for _, op := range ops {
		if op.Name == "vic" {
			op.Role = string(auth.RoleViewer)
			if err := st.PutOperator(op); err != nil {
				t.Fatal(err)
			}
		}
	}
	refusals[2].a.token = vicTok
	refusals[3].a.token = put("nat", auth.RoleOperator)
	put("nat", auth.RoleOperator) // a new token: the first revoked
	refusals[4].a.token = put("rex", auth.RoleOperator)
	if err := st.DeleteOperator("rex"); err != nil {
		t.Fatal(err)
	}
	for _, r := range refusals {
		err := r.a.recheck(target, "R1")
		if err == nil {
			t.Errorf("%s: not refused", r.name)
			continue
		}
		for _, w := range []string{"standby: taking over run R1 of graph g on " + url + ": refused: " + r.want,
			"this standby wrote nothing to the run and gave the lead up",
			"`reprise resume R1` with the token of an operator who may resume (role operator or admin) goes on with it"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the refusal does not say %q:\n%v", r.name, w, err)
			}
		}
		if strings.Contains(err.Error(), "rpr_") {
			t.Errorf("%s: the refusal prints a token: %v", r.name, err)
		}
	}
	// Unchanged: it goes on, journaling amy.
	a = &sessionAuth{statePath: url, act: actRun, op: "amy", by: "amy", token: amy}
	if err := a.recheck(target, "R1"); err != nil || a.by != "amy" {
		t.Errorf("amy unchanged: %v (by %q)", err, a.by)
	}
}
