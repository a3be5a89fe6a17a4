package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

func TestTokenStoredOnlyAsHash(t *testing.T) {
	op, token, err := NewOperator("alice", RoleApprover, "root", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, secret, ok := splitToken(token)
	if !ok {
		t.Fatalf("token %q does not parse", token)
	}
	if strings.Contains(op.Hash, secret) || strings.Contains(op.TokenID+op.Hash, token) {
		t.Fatalf("record %+v holds the secret", op)
	}
	if !strings.HasPrefix(op.Hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with the chosen parameters", op.Hash)
	}
	ops := []state.Operator{op}
	c := &Checker{Operators: func() ([]state.Operator, error) { return ops, nil }}
	got, err := c.Check(token)
	if err != nil || got.Name != "alice" {
		t.Fatalf("check: %+v, %v", got, err)
	}
	// Cached path, then a wrong secret with the right id.
	if _, err := c.Check(token); err != nil {
		t.Fatal(err)
	}
	bad := token[:len(token)-2] + "xx"
	if _, err := c.Check(bad); !errors.Is(err, ErrBadToken) {
		t.Fatalf("wrong secret: %v", err)
	}
	for _, s := range []string{"", "rpr_", "rpr_abc_def", "Bearer " + token, token + "_"} {
		if _, err := c.Check(s); !errors.Is(err, ErrBadToken) {
			t.Fatalf("check(%q): %v, want ErrBadToken", s, err)
		}
	}
	// Revoked: gone from the list, refused at once although cached.
	ops = nil
	if _, err := c.Check(token); !errors.Is(err, ErrBadToken) {
		t.Fatalf("revoked: %v", err)
	}
	// A new token for the same name does not accept the old one.
	op2, _, _ := NewOperator("alice", RoleApprover, "root", time.Now())
	op2.TokenID = op.TokenID
	ops = []state.Operator{op2}
	if _, err := c.Check(token); !errors.Is(err, ErrBadToken) {
		t.Fatalf("re-issued: %v", err)
	}
}

func TestRoles(t *testing.T) {
	cases := []struct {
		r    Role
		a    Action
		want bool
	}{
		{RoleViewer, ActView, true}, {RoleViewer, ActApprove, false}, {RoleViewer, ActRetry, false},
		{RoleOperator, ActRetry, true}, {RoleOperator, ActMark, true}, {RoleOperator, ActApprove, false},
		{RoleApprover, ActApprove, true}, {RoleApprover, ActCertify, true}, {RoleApprover, ActRetry, false},
		{RoleApprover, ActManage, false}, {RoleAdmin, ActManage, true}, {RoleAdmin, ActApprove, true},
	}
	for _, c := range cases {
		if got := c.r.Can(c.a); got != c.want {
			t.Errorf("%s can %s: %v, want %v", c.r, c.a, got, c.want)
		}
	}
	if _, err := ParseRole("root"); err == nil || !strings.Contains(err.Error(), "viewer, operator, approver or admin") {
		t.Fatalf("ParseRole(root): %v", err)
	}
	for _, n := range []string{"", "-x", "a b", "<script>", strings.Repeat("a", 65)} {
		if ValidName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
}
