package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCLIOperators: add prints a token once and stores only its hash; list
// shows names and roles, never tokens; revoke removes; bad input is a
// usage error naming the value.
func TestCLIOperators(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	token := strings.TrimSpace(d.mustRun(0, "operators", "add", "alice", "--role", "approver"))
	if !strings.HasPrefix(token, "rpr_") || len(token) < 40 {
		t.Fatalf("token %q", token)
	}
	d.mustRun(0, "operators", "add", "bob", "--role", "viewer")
	raw, err := os.ReadFile(d.path("reprise.db"))
	if err != nil {
		t.Fatal(err)
	}
	// rpr_<16 hex id>_<secret>: the secret is base64url and may hold '_' itself.
	secret := token[len("rpr_")+16+1:]
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the state file holds the token's secret in clear")
	}
	if !bytes.Contains(raw, []byte("$argon2id$")) {
		t.Fatal("the state file holds no argon2id hash")
	}
	if fi, err := os.Stat(d.path("reprise.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v, %v", fi.Mode(), err)
	}
	list := d.mustRun(0, "operators", "list")
	if !strings.Contains(list, "alice") || !strings.Contains(list, "approver") || !strings.Contains(list, "bob") ||
		strings.Contains(list, secret) || strings.Contains(list, "argon2") {
		t.Fatalf("list:\n%s", list)
	}
	_, stderr, code := d.run("operators", "add", "carol", "--role", "root")
	if code != 2 || !strings.Contains(stderr, `unknown role "root"`) {
		t.Fatalf("bad role: exit %d, %s", code, stderr)
	}
	_, stderr, code = d.run("operators", "add", "<b>", "--role", "viewer")
	if code != 2 || !strings.Contains(stderr, `operator name "<b>"`) {
		t.Fatalf("bad name: exit %d, %s", code, stderr)
	}
	d.mustRun(0, "operators", "revoke", "alice")
	if list := d.mustRun(0, "operators", "list"); strings.Contains(list, "alice") {
		t.Fatalf("alice still listed:\n%s", list)
	}
	_, stderr, code = d.run("operators", "revoke", "alice")
	if code != 1 || !strings.Contains(stderr, "operator not found") {
		t.Fatalf("revoke twice: exit %d, %s", code, stderr)
	}
}

// TestEtcdOperatorsNeedAdmin: on an etcd state, anyone who reaches etcd
// adds the first operator (bootstrap); from then on `operators add` and
// `operators revoke` need an admin's token: without one, with an
// approver's, or with a wrong one they are refused (exit 1, saying why)
// and nothing changes; with an admin's they are applied, and the operator
// added records that admin. No change may leave operators without an
// admin.
func TestEtcdOperatorsNeedAdmin(t *testing.T) {
	t.Parallel() // waits on etcd
	c := sharedEtcd(t)
	url := c.URL("opsauth/reprise")
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER=", "REPRISE_OPERATOR=mallory"}
	base := d.env
	as := func(env string, args ...string) (string, string, int) {
		d.t.Helper()
		d.env = append(append([]string{}, base...), env)
		defer func() { d.env = base }()
		return d.run(append(args, "--state", url)...)
	}
	root, errs, code := as("REPRISE_TOKEN=", "operators", "add", "root", "--role", "admin")
	root = strings.TrimSpace(root)
	if code != 0 || !strings.HasPrefix(root, "rpr_") {
		t.Fatalf("the first operator without a token: exit %d, want 0 with a token\n%s%s", code, root, errs)
	}
	list := func() string { // an operator's token, once there are operators (TestEtcdSessionAuthorization)
		d.t.Helper()
		out, errs, code := as("REPRISE_TOKEN="+root, "operators", "list")
		if code != 0 {
			d.t.Fatalf("operators list: exit %d\n%s%s", code, out, errs)
		}
		return out
	}
	claire, errs, code := as("REPRISE_TOKEN="+root, "operators", "add", "claire", "--role", "approver")
	claire = strings.TrimSpace(claire)
	if code != 0 || !strings.HasPrefix(claire, "rpr_") || !strings.Contains(errs, "added as approver by root") {
		t.Fatalf("add with an admin's token: exit %d\n%s%s", code, claire, errs)
	}
	if l := list(); !regexp.MustCompile(`(?m)^claire\s+approver\s+\S+\s+root$`).MatchString(l) {
		t.Errorf("list does not say root added claire:\n%s", l)
	}
	wrong := root[:len(root)-4] + "AAAA"
	before := list()
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"add without a token", "REPRISE_TOKEN=", []string{"add", "mallory", "--role", "admin"}, "needs an admin's token"},
		{"add by an approver", "REPRISE_TOKEN=" + claire, []string{"add", "mallory", "--role", "admin"}, "operator claire (role approver) may not manage operators"},
		{"add, a wrong token", "REPRISE_TOKEN=" + wrong, []string{"add", "mallory", "--role", "admin"}, "unknown or revoked token"},
		{"a new token without one", "REPRISE_TOKEN=", []string{"add", "claire", "--role", "approver"}, "needs an admin's token"},
		{"revoke without a token", "REPRISE_TOKEN=", []string{"revoke", "claire"}, "needs an admin's token"},
		{"revoke by an approver", "REPRISE_TOKEN=" + claire, []string{"revoke", "root"}, "operator claire (role approver) may not manage operators"},
		{"revoke the last admin", "REPRISE_TOKEN=" + root, []string{"revoke", "root"}, "would leave no admin"},
		{"demote the last admin", "REPRISE_TOKEN=" + root, []string{"add", "root", "--role", "viewer"}, "would leave no admin"},
	} {
		out, errs, code := as(tc.env, append([]string{"operators"}, tc.args...)...)
		if code != exitError || !strings.Contains(errs, "refused") || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, want 1 refused with %q:\n%s%s", tc.name, code, tc.want, out, errs)
		}
		if strings.Contains(out+errs, "rpr_") {
			t.Errorf("%s prints a token:\n%s%s", tc.name, out, errs)
		}
	}
	if after := list(); after != before {
		t.Errorf("refused changes changed the operators:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A new token for claire keeps her in: her old one stops working.
	if _, errs, code := as("REPRISE_TOKEN="+root, "operators", "add", "claire", "--role", "approver"); code != 0 {
		t.Fatalf("a new token for claire with an admin's token: exit %d\n%s", code, errs)
	}
	if _, errs, code := as("REPRISE_TOKEN="+claire, "operators", "revoke", "root"); code != exitError || !strings.Contains(errs, "unknown or revoked token") {
		t.Errorf("claire's old token: exit %d, want 1 unknown or revoked:\n%s", code, errs)
	}
	tokFile := d.write("root.token", root+"\n")
	out, errs, code := as("REPRISE_TOKEN_FILE="+tokFile, "operators", "revoke", "claire")
	if code != 0 || !strings.Contains(out, "operator claire revoked by admin root") {
		t.Fatalf("revoke with an admin's token file: exit %d\n%s%s", code, out, errs)
	}
	if l := list(); strings.Contains(l, "claire") || !strings.Contains(l, "root") {
		t.Errorf("list after revoke:\n%s", l)
	}
	// The last operator may go: the state is back to no operators.
	if _, errs, code := as("REPRISE_TOKEN="+root, "operators", "revoke", "root"); code != 0 {
		t.Fatalf("revoke the last operator: exit %d\n%s", code, errs)
	}
	if l := list(); !strings.Contains(l, "no operators yet") {
		t.Errorf("list after the last revoke:\n%s", l)
	}
}
