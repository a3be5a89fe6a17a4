package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// opsRace is an etcd state of its own, for changes of operators made in
// this process with the token each names.
type opsRace struct {
	t   *testing.T
	url string
}

func newOpsRace(t *testing.T, name string) *opsRace {
	return &opsRace{t: t, url: sharedEtcd(t).URL("opsrace/" + name + "/reprise")}
}

// opsChange is one change of the operators: add (a role) or revoke
// name, with token (empty: none).
type opsChange struct {
	token, name, role string
}

// change names c as changeOperators does.
func (c opsChange) change() string {
	if c.role != "" {
		return fmt.Sprintf("operators add %q", c.name)
	}
	return fmt.Sprintf("operators revoke %q", c.name)
}

// do makes c and returns the token of the operator added.
func (r *opsRace) do(c opsChange) (string, error) {
	opts := operatorsOptions{StatePath: r.url, Name: c.name, Role: c.role,
		token: func() (string, error) { return c.token, nil }}
	if c.role != "" {
		_, tok, err := runOperatorsAdd(context.Background(), opts)
		return tok, err
	}
	_, err := runOperatorsRevoke(context.Background(), opts)
	return "", err
}

// must makes c, which must succeed, and returns the token added.
func (r *opsRace) must(c opsChange) string {
	r.t.Helper()
	tok, err := r.do(c)
	if err != nil {
		r.t.Fatalf("%s: %v", c.change(), err)
	}
	return tok
}

// race makes first and second at once, each in a goroutine, so that both
// are checked before either writes and first writes first
// (operatorsChecked holds them): second's first write finds the operators
// changed since its check. It returns what each returned, and how many
// times second was checked and allowed to write.
func (r *opsRace) race(first, second opsChange) (error, error, int) {
	r.t.Helper()
	if first.change() == second.change() {
		r.t.Fatal("race: two changes of the same name")
	}
	firstChecked, secondChecked, firstDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			r.t.Errorf("race: %s did not come", what)
		}
	}
	operatorsChecked = func(change string) {
		mu.Lock()
		seen[change]++
		n := seen[change]
		mu.Unlock()
		if n > 1 {
			return
		}
		switch change {
		case first.change():
			close(firstChecked)
			wait(secondChecked, "the check of "+second.change())
		case second.change():
			close(secondChecked)
			wait(firstDone, first.change())
		}
	}
	defer func() { operatorsChecked = nil }()
	var errFirst, errSecond error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(firstDone)
		_, errFirst = r.do(first)
	}()
	go func() {
		defer wg.Done()
		wait(firstChecked, "the check of "+first.change())
		_, errSecond = r.do(second)
	}()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return errFirst, errSecond, seen[second.change()]
}

// operators returns name:role of every operator, in order.
func (r *opsRace) operators() []string {
	r.t.Helper()
	st, err := openEtcd(r.url, true) // not operators list: it needs a token
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	ops, err := st.Operators()
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, op := range ops {
		out = append(out, op.Name+":"+op.Role)
	}
	return out
}

// twoAdmins makes root and ann admins and view a viewer, and returns the
// admins' tokens.
func (r *opsRace) twoAdmins() (root, ann string) {
	root = r.must(opsChange{name: "root", role: "admin"})
	ann = r.must(opsChange{token: root, name: "ann", role: "admin"})
	r.must(opsChange{token: root, name: "view", role: "viewer"})
	return root, ann
}

// wantRefused checks that err refuses the change for the reason want.
func wantRefused(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want refused: %s", what, err, want)
	}
}

// TestEtcdOperatorsRace: on etcd, a change of the operators is checked and
// written as a compare-and-swap. Two changes checked against the same
// operators, each allowed alone, are not both written when together they
// break the rules: the second is checked again against what the first
// left, and refused saying why — two admins revoking each other (the
// second admin's token is revoked), two changes that each leave an admin
// but not both (no admin left), two first operators added at once (the
// second needs an admin's token). A second change that the first leaves
// allowed is written after its new check. operatorsChecked holds each
// pair so that both are checked before the first writes: the race is not
// left to the scheduler.
func TestEtcdOperatorsRace(t *testing.T) {
	t.Run("admins revoke each other", func(t *testing.T) {
		r := newOpsRace(t, "mutual")
		root, ann := r.twoAdmins()
		err1, err2, _ := r.race(opsChange{token: root, name: "ann"}, opsChange{token: ann, name: "root"})
		if err1 != nil {
			t.Fatalf("first revoke: %v", err1)
		}
		wantRefused(t, "second revoke", err2, "token: unknown or revoked token")
		if got := r.operators(); !slices.Equal(got, []string{"root:admin", "view:viewer"}) {
			t.Errorf("operators %v, want root (admin) and view", got)
		}
	})
	t.Run("two revokes of two admins", func(t *testing.T) {
		r := newOpsRace(t, "two-revokes")
		root, _ := r.twoAdmins()
		err1, err2, _ := r.race(opsChange{token: root, name: "ann"}, opsChange{token: root, name: "root"})
		if err1 != nil {
			t.Fatalf("first revoke: %v", err1)
		}
		wantRefused(t, "second revoke", err2, "would leave no admin")
		if got := r.operators(); !slices.Equal(got, []string{"root:admin", "view:viewer"}) {
			t.Errorf("operators %v, want root (admin) and view", got)
		}
	})
	t.Run("a demotion, then a revoke", func(t *testing.T) {
		r := newOpsRace(t, "demote-revoke")
		root, ann := r.twoAdmins()
		err1, err2, _ := r.race(opsChange{token: root, name: "root", role: "viewer"}, opsChange{token: ann, name: "ann"})
		if err1 != nil {
			t.Fatalf("demotion: %v", err1)
		}
		wantRefused(t, "revoke", err2, "would leave no admin")
		if got := r.operators(); !slices.Equal(got, []string{"ann:admin", "root:viewer", "view:viewer"}) {
			t.Errorf("operators %v, want ann still admin", got)
		}
	})
	t.Run("a revoke, then a demotion", func(t *testing.T) {
		r := newOpsRace(t, "revoke-demote")
		root, ann := r.twoAdmins()
		err1, err2, _ := r.race(opsChange{token: ann, name: "ann"}, opsChange{token: root, name: "root", role: "viewer"})
		if err1 != nil {
			t.Fatalf("revoke: %v", err1)
		}
		wantRefused(t, "demotion", err2, "would leave no admin")
		if got := r.operators(); !slices.Equal(got, []string{"root:admin", "view:viewer"}) {
			t.Errorf("operators %v, want root still admin", got)
		}
	})
	t.Run("an add, then a revoke it allows", func(t *testing.T) {
		r := newOpsRace(t, "add-revoke")
		root, ann := r.twoAdmins()
		err1, err2, checks := r.race(opsChange{token: root, name: "carl", role: "admin"}, opsChange{token: ann, name: "root"})
		if err1 != nil || err2 != nil {
			t.Fatalf("add: %v; revoke: %v", err1, err2)
		}
		if checks != 2 {
			t.Errorf("the revoke was checked %d times, want 2 (its first write found the add)", checks)
		}
		if got := r.operators(); !slices.Equal(got, []string{"ann:admin", "carl:admin", "view:viewer"}) {
			t.Errorf("operators %v, want ann, carl and view", got)
		}
	})
	t.Run("two first operators", func(t *testing.T) {
		r := newOpsRace(t, "bootstrap")
		_, err2, _ := r.race(opsChange{name: "root", role: "admin"}, opsChange{name: "eve", role: "admin"})
		wantRefused(t, "second first operator", err2, "needs an admin's token")
		if got := r.operators(); !slices.Equal(got, []string{"root:admin"}) {
			t.Errorf("operators %v, want root alone", got)
		}
	})
}

// TestEtcdOperatorsKeepChanging: a change whose write finds the operators
// changed each time gives up after operatorsAttempts checks, says so, and
// writes nothing.
func TestEtcdOperatorsKeepChanging(t *testing.T) {
	r := newOpsRace(t, "keep-changing")
	root, _ := r.twoAdmins()
	n := 0
	operatorsChecked = func(change string) {
		if change != `operators add "dan"` {
			return
		}
		n++
		// Another admin's change after each check.
		if _, err := r.do(opsChange{token: root, name: "view", role: "viewer"}); err != nil {
			t.Errorf("the other change: %v", err)
		}
	}
	defer func() { operatorsChecked = nil }()
	_, err := r.do(opsChange{token: root, name: "dan", role: "viewer"})
	if err == nil || !strings.Contains(err.Error(), "changed each time") || n != operatorsAttempts {
		t.Errorf("add: %v after %d checks, want it to give up after %d", err, n, operatorsAttempts)
	}
	if got := r.operators(); slices.Contains(got, "dan:viewer") {
		t.Errorf("dan was added: %v", got)
	}
}
