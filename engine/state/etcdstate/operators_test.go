package etcdstate_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// names returns the names of the operators st holds, in order.
func names(t *testing.T, st *etcdstate.Store) []string {
	t.Helper()
	ops, err := st.Operators()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, op := range ops {
		out = append(out, op.Name)
	}
	return out
}

// TestOperatorsIf: a conditional change of the operators is written only
// if no change of them (an add, a new token, a revoke, by this store or
// another process's) was made after the read it is conditional on; writes
// elsewhere in the state do not count. The guard key every change puts is
// not an operator.
func TestOperatorsIf(t *testing.T) {
	t.Parallel()
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	other, err := etcdstate.Open(context.Background(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	op := func(name, role string) state.Operator {
		return state.Operator{Name: name, Role: role, CreatedBy: "test"}
	}

	// No operator and no guard yet: the first (bootstrap) is written; a
	// second made from the same read is not.
	ops, rev, err := st.OperatorsAt()
	if err != nil || len(ops) != 0 || rev <= 0 {
		t.Fatalf("OperatorsAt on a fresh state: %v, %d, %v", ops, rev, err)
	}
	if err := st.PutOperatorIf(op("root", "admin"), rev); err != nil {
		t.Fatalf("the first operator: %v", err)
	}
	if err := other.PutOperatorIf(op("eve", "admin"), rev); !errors.Is(err, etcdstate.ErrOperatorsChanged) {
		t.Fatalf("a second first operator: %v, want ErrOperatorsChanged", err)
	}
	if err := st.PutOperator(op("ann", "admin")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		change func() error
	}{
		{"an add", func() error { return other.PutOperator(op("bob", "viewer")) }},
		{"a new token", func() error { return other.PutOperator(op("bob", "viewer")) }},
		{"a conditional add", func() error {
			_, r, err := other.OperatorsAt()
			if err != nil {
				return err
			}
			return other.PutOperatorIf(op("carl", "viewer"), r)
		}},
		{"a revoke", func() error { return other.DeleteOperator("carl") }},
		{"a conditional revoke", func() error {
			_, r, err := other.OperatorsAt()
			if err != nil {
				return err
			}
			return other.DeleteOperatorIf("bob", r)
		}},
	} {
		_, rev, err := st.OperatorsAt()
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		before := names(t, st)
		if err := st.PutOperatorIf(op("mallory", "admin"), rev); !errors.Is(err, etcdstate.ErrOperatorsChanged) {
			t.Errorf("add after %s since the read: %v, want ErrOperatorsChanged", tc.name, err)
		}
		if err := st.DeleteOperatorIf("ann", rev); !errors.Is(err, etcdstate.ErrOperatorsChanged) {
			t.Errorf("revoke after %s since the read: %v, want ErrOperatorsChanged", tc.name, err)
		}
		if err := st.DeleteOperatorIf("nobody", rev); !errors.Is(err, etcdstate.ErrOperatorsChanged) {
			t.Errorf("revoke of nobody after %s since the read: %v, want ErrOperatorsChanged", tc.name, err)
		}
		if after := names(t, st); !slices.Equal(after, before) {
			t.Errorf("refused changes after %s changed the operators: %v, then %v", tc.name, before, after)
		}
	}

	// Writes that are no change of the operators do not count.
	_, rev, err = st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawClient(t).Put(context.Background(), u.Root()+"runs/rec/elsewhere", "{}"); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteOperator("nobody"); !errors.Is(err, state.ErrOperatorNotFound) {
		t.Fatalf("revoke nobody: %v, want ErrOperatorNotFound", err)
	}
	if err := st.DeleteOperatorIf("nobody", rev); !errors.Is(err, state.ErrOperatorNotFound) {
		t.Errorf("conditional revoke of nobody: %v, want ErrOperatorNotFound", err)
	}
	if err := st.PutOperatorIf(op("dan", "viewer"), rev); err != nil {
		t.Fatalf("add, nothing changed since the read: %v", err)
	}
	_, rev, err = st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteOperatorIf("ann", rev); err != nil {
		t.Fatalf("revoke, nothing changed since the read: %v", err)
	}
	if got := names(t, st); !slices.Equal(got, []string{"dan", "root"}) {
		t.Errorf("operators %v, want [dan root]", got)
	}

	// The guard is a key of its own, outside the operators.
	resp, err := rawClient(t).Get(context.Background(), u.Root()+"operators-rev")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("guard key: %v, %v", resp, err)
	}
	if ops, err := other.Operators(); err != nil || len(ops) != 2 {
		t.Errorf("another store reads %v, %v: want the 2 operators only", ops, err)
	}
}

// TestOperatorsIfReadOnly: a read-only store refuses conditional changes
// as it does the others.
func TestOperatorsIfReadOnly(t *testing.T) {
	t.Parallel()
	_, u := mustEtcd(t, nil, etcdstate.Options{})
	ro, err := etcdstate.Open(context.Background(), u, etcdstate.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, rev, err := ro.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.PutOperatorIf(state.Operator{Name: "x", Role: "admin"}, rev); !errors.Is(err, state.ErrReadOnly) {
		t.Errorf("PutOperatorIf: %v, want ErrReadOnly", err)
	}
	if err := ro.DeleteOperatorIf("x", rev); !errors.Is(err, state.ErrReadOnly) {
		t.Errorf("DeleteOperatorIf: %v, want ErrReadOnly", err)
	}
}
