package main

import (
	"bytes"
	"os"
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
