package main

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

// authzGraph parks with a gate waiting, two failed nodes and the core zone
// to certify once they are done.
const authzGraph = `version: 1
name: authz
defaults: {retries: 0}
zones:
  - {id: core, title: Core}
  - {id: clinical, title: Care}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core}
  - {id: gate, kind: data, plugin: manual, zone: core, depends_on: [ad]}
  - {id: b1, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'exit 1']}}
  - {id: b2, kind: application, plugin: exec, zone: core, with: {restore: [sh, -c, 'exit 1']}}
  - {id: lab, kind: application, plugin: noop, zone: clinical, depends_on: [ad]}
`

// cliResult is what one reprise process did.
type cliResult struct {
	name, out, errs string
	code            int
}

// runAll runs the reprise command lines of cmds (by name) at once, each a
// process with its own environment, and returns what each did: a command
// that no coordinator takes waits its 5 s, so they wait together.
func (d *cliDir) runAll(cmds map[string]struct {
	env  []string
	args []string
}) map[string]cliResult {
	d.t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[string]cliResult{}
	for name, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := d.command(c.args...)
			cmd.Env = append(cmd.Env, c.env...)
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if err != nil {
				code = -1
				if cmd.ProcessState != nil {
					code = cmd.ProcessState.ExitCode()
				}
			}
			mu.Lock()
			got[name] = cliResult{name: name, out: out.String(), errs: errb.String(), code: code}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

// TestEtcdDirectAuthorization: on an etcd state with no coordinator
// leading the run, approve, certify, mark and retry write the state
// themselves, after the decision a coordinator makes. Without operators a
// command is journaled with its --by, as before. Once the state has
// operators, a command without a token, with a token whose role may not
// do it, or with a --by naming someone else is refused (exit 1, saying
// why), and nothing reaches the journal; with the token of an operator
// whose role allows it, it is applied and journaled with that operator's
// name.
func TestEtcdDirectAuthorization(t *testing.T) {
	t.Parallel() // waits on etcd and on the commands' 5 s for a coordinator
	c := sharedEtcd(t)
	url := c.URL("authz/reprise")
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER="}
	g := d.write("graph.yaml", authzGraph)
	out, errs, code := d.run("run", "--state", url, g)
	runID := regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{4}\b`).FindString(out)
	if code == 0 || runID == "" {
		t.Fatalf("run: exit %d, want it stopped with a run id\n%s%s", code, out, errs)
	}
	journal := func() string { return d.mustRun(0, "log", "--state", url, runID) }

	// No operators: the --by is journaled, no token asked.
	if out := d.mustRun(0, "mark", "--state", url, runID, "b1", "--done", "--reason", "restored by hand", "--by", "bob"); !strings.Contains(out, "marked done by bob") {
		t.Errorf("mark without operators:\n%s", out)
	}
	if out := d.mustRun(0, "log", "--state", url, runID, "--node", "b1"); !strings.Contains(out, "by bob") {
		t.Errorf("the journal does not name bob:\n%s", out)
	}

	tok := func(t string) []string { return []string{"REPRISE_TOKEN=" + t} }
	// The first operator needs no token, the next ones an admin's
	// (TestEtcdOperatorsNeedAdmin).
	root := strings.TrimSpace(d.mustRun(0, "operators", "add", "root", "--role", "admin", "--state", url))
	base := d.env
	d.env = append(append([]string{}, base...), tok(root)...)
	ops := strings.TrimSpace(d.mustRun(0, "operators", "add", "ops", "--role", "operator", "--state", url))
	claire := strings.TrimSpace(d.mustRun(0, "operators", "add", "claire", "--role", "approver", "--state", url))
	vic := strings.TrimSpace(d.mustRun(0, "operators", "add", "vic", "--role", "viewer", "--state", url))
	d.env = base
	before := journal()
	type cmdLine = struct {
		env  []string
		args []string
	}
	refused := map[string]struct {
		cmd  cmdLine
		want string
	}{
		"approve without a token": {cmdLine{nil, []string{"approve", runID, "gate", "--by", "claire"}}, "needs an operator's token"},
		"approve by an operator":  {cmdLine{tok(ops), []string{"approve", runID, "gate", "--by", "ops"}}, "operator ops (role operator) may not approve"},
		"approve as someone else": {cmdLine{tok(claire), []string{"approve", runID, "gate", "--by", "alice"}}, `--by "alice" but the token is operator claire's`},
		"approve, a wrong token":  {cmdLine{tok(claire[:len(claire)-4] + "AAAA"), []string{"approve", runID, "gate", "--by", "claire"}}, "unknown or revoked token"},
		"certify by an operator":  {cmdLine{tok(ops), []string{"certify", runID, "core", "--by", "ops", "--comment", "x"}}, "operator ops (role operator) may not certify"},
		"mark without a token":    {cmdLine{nil, []string{"mark", runID, "b2", "--done", "--reason", "x"}}, "needs an operator's token"},
		"mark by a viewer":        {cmdLine{tok(vic), []string{"mark", runID, "b2", "--done", "--reason", "x"}}, "operator vic (role viewer) may not mark"},
		"retry without a token":   {cmdLine{nil, []string{"retry", runID, "b2", "--by", "bob"}}, "needs an operator's token"},
	}
	cmds := map[string]cmdLine{}
	for name, tc := range refused {
		cmds[name] = cmdLine{tc.cmd.env, append(tc.cmd.args, "--state", url)}
	}
	for name, r := range d.runAll(cmds) {
		want := refused[name].want
		if r.code != exitError || !strings.Contains(r.errs, "refused") || !strings.Contains(r.errs, want) {
			t.Errorf("%s: exit %d, want 1 refused with %q:\n%s%s", name, r.code, want, r.out, r.errs)
		}
		for _, secret := range []string{ops, claire, vic} {
			if strings.Contains(r.out+r.errs, secret) {
				t.Errorf("%s prints a token", name)
			}
		}
	}
	if after := journal(); after != before {
		t.Errorf("refused commands wrote to the journal:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// With the right tokens: applied, journaled with the token's operator
	// (mark's default --by, $USER, gives way to it). One after the other:
	// two writers at once are not what this test is about.
	for _, tc := range []struct {
		name string
		cmd  cmdLine
	}{
		{"approve", cmdLine{tok(claire), []string{"approve", runID, "gate", "--by", "claire", "--comment", "checked", "--state", url}}},
		{"mark", cmdLine{tok(ops), []string{"mark", runID, "b2", "--done", "--reason", "restored by hand", "--state", url}}},
	} {
		r := d.runAll(map[string]cmdLine{tc.name: tc.cmd})[tc.name]
		if r.code != 0 || strings.Contains(r.errs, "through etcd") {
			t.Errorf("%s with the right token: exit %d\n%s%s", tc.name, r.code, r.out, r.errs)
		}
	}
	if out := d.mustRun(0, "log", "--state", url, runID, "--node", "gate"); !strings.Contains(out, "by claire") {
		t.Errorf("the journal does not name claire for the gate:\n%s", out)
	}
	if out := d.mustRun(0, "log", "--state", url, runID, "--node", "b2"); !strings.Contains(out, "by ops") {
		t.Errorf("the journal does not name ops for the mark:\n%s", out)
	}
	d.env = append(d.env, tok(claire)...)
	if out := d.mustRun(0, "certify", "--state", url, runID, "core", "--by", "claire", "--comment", "AD checked clean"); !strings.Contains(out, "certified by claire") {
		t.Errorf("certify with an approver's token:\n%s", out)
	}
	if out := journal(); !strings.Contains(out, "zone-certified") || !strings.Contains(out, "by claire") {
		t.Errorf("the journal lacks claire's certification:\n%s", out)
	}
	if out := d.mustRun(0, "log", "--state", url, runID, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
}

// TestFileStateActionsKeepBy: on a state file the file's permissions are
// the boundary (README, Security notes): with operators in it, approve
// and mark without a token are applied and journal their --by.
func TestFileStateActionsKeepBy(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER="}
	g := d.write("graph.yaml", authzGraph)
	out, errs, code := d.run("run", g)
	runID := regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{4}\b`).FindString(out)
	if code == 0 || runID == "" {
		t.Fatalf("run: exit %d, want it stopped with a run id\n%s%s", code, out, errs)
	}
	d.mustRun(0, "operators", "add", "claire", "--role", "approver")
	d.mustRun(0, "approve", runID, "gate", "--by", "alice", "--comment", "checked")
	d.mustRun(0, "mark", runID, "b1", "--done", "--reason", "restored by hand", "--by", "bob")
	for node, by := range map[string]string{"gate": "by alice", "b1": "by bob"} {
		if out := d.mustRun(0, "log", runID, "--node", node); !strings.Contains(out, by) {
			t.Errorf("the journal of %s does not say %q:\n%s", node, by, out)
		}
	}
}
