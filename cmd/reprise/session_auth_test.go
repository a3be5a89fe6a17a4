package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// sessAuthGraph parks a drill on a suspicious restore point (web-data's
// w1, packed with UPX): restore-point, resume and cleanup then have a run
// to act on.
const sessAuthGraph = `version: 1
name: sessauth
scanners:
  rules: {type: yara, rules: [rules.yar]}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop}
  - id: web-data
    kind: data
    plugin: exec
    depends_on: [ad]
    scan: [rules]
    restore_points: [{id: w1, time: '2026-11-29T12:00:00Z', path: points/web/w1}]
    with: {restore: [sh, -c, 'true']}
`

// writeSessAuth writes sessAuthGraph and its restore point in d, and
// returns the graph's path.
func writeSessAuth(t *testing.T, d *cliDir) string {
	t.Helper()
	if err := os.MkdirAll(d.path(filepath.Join("points", "web", "w1", "bin")), 0o755); err != nil {
		t.Fatal(err)
	}
	d.write("points/web/w1/bin/tool", "..UPX!..")
	d.write("rules.yar", "rule Packer : suspicious { strings: $a = \"UPX!\" condition: $a }\n")
	return d.write("graph.yaml", sessAuthGraph)
}

// journalLine returns the last line of journal that has entry type typ,
// or "".
func journalLine(journal, typ string) string {
	last := ""
	for _, l := range strings.Split(journal, "\n") {
		if strings.Contains(l, " "+typ+" ") || strings.HasSuffix(l, " "+typ) {
			last = l
		}
	}
	return last
}

// TestEtcdSessionAuthorization: on an etcd state that has operators, run
// (a standby too), resume, restore-point, cleanup and operators list need
// the token of an operator whose role allows them: without one, with a
// wrong one, or with a role that may not (a viewer's for run and resume,
// an operator's for restore-point and cleanup, which are the admins'), or
// with a --by naming someone else, they exit 1, refused, naming the
// command, the state and what is needed, and write nothing to etcd. With
// the right token they go through, and run, resume and a standby that
// goes on with a parked run are journaled with the token's operator.
func TestEtcdSessionAuthorization(t *testing.T) {
	t.Parallel() // waits on etcd
	c := sharedEtcd(t)
	const prefix = "sessauth/reprise"
	url := c.URL(prefix)
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER=", "REPRISE_OPERATOR=mallory"}
	base := d.env
	as := func(token string, args ...string) (string, string, int) {
		t.Helper()
		d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+token)
		defer func() { d.env = base }()
		return d.run(append(args, "--state", url)...)
	}
	g := writeSessAuth(t, d)

	// Without operators, nothing is asked (bootstrap): the first operator
	// and the list.
	if out := d.mustRun(0, "operators", "list", "--state", url); !strings.Contains(out, "no operators yet") {
		t.Errorf("operators list without operators: %s", out)
	}
	root := strings.TrimSpace(d.mustRun(0, "operators", "add", "root", "--role", "admin", "--state", url))
	d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+root)
	ops := strings.TrimSpace(d.mustRun(0, "operators", "add", "ops", "--role", "operator", "--state", url))
	vic := strings.TrimSpace(d.mustRun(0, "operators", "add", "vic", "--role", "viewer", "--state", url))
	d.env = base
	wrong := ops[:len(ops)-4] + "AAAA"

	// keys returns every key under the state's prefix with its
	// ModRevision: a refused command changes none.
	cli := c.Client(t)
	keys := func() map[string]int64 {
		t.Helper()
		resp, err := cli.Get(context.Background(), "/"+prefix+"/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, kv := range resp.Kvs {
			m[string(kv.Key)] = kv.ModRevision
		}
		return m
	}
	same := func(a, b map[string]int64) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	type refusal struct {
		name, token string
		args        []string
		want        []string
	}
	refuse := func(cases []refusal) {
		t.Helper()
		before := keys()
		for _, tc := range cases {
			out, errs, code := as(tc.token, tc.args...)
			if code != exitError || !strings.Contains(errs, "refused") || !strings.Contains(errs, url) {
				t.Errorf("%s: exit %d, want 1 refused naming %s:\n%s%s", tc.name, code, url, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("%s: the refusal does not say %q:\n%s", tc.name, w, errs)
				}
			}
			if strings.Contains(out+errs, "rpr_") {
				t.Errorf("%s prints a token:\n%s%s", tc.name, out, errs)
			}
		}
		if after := keys(); !same(before, after) {
			t.Errorf("refused commands wrote to etcd:\nbefore: %v\nafter:  %v", before, after)
		}
	}

	refuse([]refusal{
		{"run without a token", "", []string{"run", "--drill", g}, []string{"run " + g + " on", "needs the token of an operator who may resume (role operator or admin)", "REPRISE_TOKEN"}},
		{"run by a viewer", vic, []string{"run", "--drill", g}, []string{"operator vic (role viewer) may not resume: that needs role operator or admin"}},
		{"run, a wrong token", wrong, []string{"run", "--drill", g}, []string{"unknown or revoked token"}},
		{"a standby without a token", "", []string{"run", "--standby", "--drill", g}, []string{"run " + g + " on", "needs the token"}},
		{"resume without a token", "", []string{"resume"}, []string{"resume on", "needs the token"}},
		{"operators list without a token", "", []string{"operators", "list"}, []string{"operators list on", "needs the token of an operator who may view (role viewer, operator, approver or admin)"}},
	})

	// run with an operator's token: parked on the suspicious point (4),
	// journaled as started by ops.
	out, errs, code := as(ops, "run", "--drill", g)
	runID := regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{4}\b`).FindString(out + errs)
	if code != 4 || runID == "" {
		t.Fatalf("run with an operator's token: exit %d, want 4 with a run id\n%s%s", code, out, errs)
	}
	journal := func() string { return d.mustRun(0, "log", "--state", url, runID) }
	if l := journalLine(journal(), "run-started"); !strings.Contains(l, " by ops:") {
		t.Errorf("run-started does not say by ops: %q\n%s", l, journal())
	}
	// A standby with no leader to wait for goes on with the parked run at
	// once (resume semantics): parked again, journaled as resumed by ops.
	if out, errs, code := as(ops, "run", "--standby", "--drill", g); code != 4 || !strings.Contains(errs, "standby: going on with run "+runID) {
		t.Fatalf("a standby with an operator's token: exit %d, want 4 going on with %s\n%s%s", code, runID, out, errs)
	}
	if l := journalLine(journal(), "run-resumed"); !strings.Contains(l, " by ops:") {
		t.Errorf("the standby's run-resumed does not say by ops: %q\n%s", l, journal())
	}

	refuse([]refusal{
		{"resume by a viewer", vic, []string{"resume", runID}, []string{"resume " + runID + " on", "operator vic (role viewer) may not resume"}},
		{"resume as someone else", ops, []string{"resume", runID, "--by", "alice"}, []string{`--by "alice" but the token is operator ops's`}},
		{"restore-point without a token", "", []string{"restore-point", runID, "web-data", "--use", "w1", "--by", "root", "--reason", "x"},
			[]string{"restore-point " + runID + " web-data on", "needs the token of an operator who may override a restore point's verdict (role admin)"}},
		{"restore-point by an operator", ops, []string{"restore-point", runID, "web-data", "--use", "w1", "--by", "ops", "--reason", "x"},
			[]string{"operator ops (role operator) may not override a restore point's verdict: that needs role admin"}},
		{"restore-point as someone else", root, []string{"restore-point", runID, "web-data", "--use", "w1", "--by", "ops", "--reason", "x"},
			[]string{`--by "ops" but the token is operator root's`}},
		{"cleanup before its time, without a token", "", []string{"cleanup", runID, "--by", "root", "--note", "x"}, []string{"cleanup " + runID + " on", "needs the token"}},
		{"operators list, a wrong token", wrong, []string{"operators", "list"}, []string{"unknown or revoked token"}},
	})

	if out, errs, code := as(root, "restore-point", runID, "web-data", "--use", "w1", "--by", "root", "--reason", "UPX is our backup agent"); code != 0 {
		t.Fatalf("restore-point with an admin's token: exit %d\n%s%s", code, out, errs)
	}
	if l := journalLine(journal(), "point-override"); !strings.Contains(l, "by root") {
		t.Errorf("point-override does not say by root: %q", l)
	}
	if out, errs, code := as(ops, "resume", runID); code != 0 {
		t.Fatalf("resume with an operator's token: exit %d\n%s%s", code, out, errs)
	}
	if l := journalLine(journal(), "run-resumed"); !strings.Contains(l, " by ops:") {
		t.Errorf("run-resumed does not say by ops: %q\n%s", l, journal())
	}
	refuse([]refusal{
		{"cleanup by an operator", ops, []string{"cleanup", runID, "--by", "ops", "--note", "VMs reverted"}, []string{"operator ops (role operator) may not clean up a drill: that needs role admin"}},
		{"cleanup by a viewer", vic, []string{"cleanup", runID, "--by", "vic", "--note", "VMs reverted"}, []string{"operator vic (role viewer) may not clean up a drill"}},
	})
	if out, errs, code := as(root, "cleanup", runID, "--by", "root", "--note", "VMs reverted"); code != 0 || !strings.Contains(out, "by root") {
		t.Fatalf("cleanup with an admin's token: exit %d\n%s%s", code, out, errs)
	}
	if out, errs, code := as(vic, "operators", "list"); code != 0 || !strings.Contains(out, "vic") {
		t.Errorf("operators list with a viewer's token: exit %d\n%s%s", code, out, errs)
	}
	if out := d.mustRun(0, "log", "--state", url, runID, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
}

// TestFileStateSessionsNoToken: on a state file the file's permissions
// are the boundary: with operators in it, run, resume, restore-point,
// cleanup and operators list need no token, and the --by given is
// journaled.
func TestFileStateSessionsNoToken(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER="}
	g := writeSessAuth(t, d)
	d.mustRun(0, "operators", "add", "root", "--role", "admin")
	out := d.mustRun(4, "run", "--drill", g)
	runID := regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{4}\b`).FindString(out)
	if runID == "" {
		t.Fatalf("no run id in %q", out)
	}
	d.mustRun(0, "restore-point", runID, "web-data", "--use", "w1", "--by", "alice", "--reason", "UPX is our backup agent")
	d.mustRun(0, "resume", runID, "--by", "bob")
	d.mustRun(0, "cleanup", runID, "--by", "carol", "--note", "VMs reverted")
	if out := d.mustRun(0, "operators", "list"); !strings.Contains(out, "root") {
		t.Errorf("operators list: %s", out)
	}
	journal := d.mustRun(0, "log", runID)
	if l := journalLine(journal, "run-started"); strings.Contains(l, " by ") {
		t.Errorf("run-started names someone on a state file: %q", l)
	}
	for typ, by := range map[string]string{"point-override": "by alice", "run-resumed": "by bob", "cleaned-up": "by carol"} {
		if l := journalLine(journal, typ); !strings.Contains(l, by) {
			t.Errorf("%s does not say %q: %q\n%s", typ, by, l, journal)
		}
	}
}
