package etcdstate_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/state/etcdstate"
)

// TestOperatorsAnswerLost: a change of the operators whose first attempt
// landed but whose answer was lost is retried, and the retry recognises
// its own change by the id it put in the guard key: a conditional revoke,
// a conditional add and a plain revoke each report success and are made
// once. If another change came between the lost answer and the retry, the
// guard holds that one's id and the retry reports the operators changed
// (the caller reads and decides again), as for any change made after the
// read.
func TestOperatorsAnswerLost(t *testing.T) {
	st, u := mustEtcd(t, nil, etcdstate.Options{})
	op := func(name, role string) state.Operator {
		return state.Operator{Name: name, Role: role, CreatedBy: "test"}
	}
	for _, o := range []state.Operator{op("root", "admin"), op("ann", "viewer"), op("bob", "viewer")} {
		if err := st.PutOperator(o); err != nil {
			t.Fatal(err)
		}
	}
	lost := 0
	loseFirst := func() bool { // the first answer of each change
		lost++
		return lost%2 == 1
	}
	restore := etcdstate.LoseOperatorAnswers(st, loseFirst)
	defer restore()

	_, rev, err := st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteOperatorIf("ann", rev); err != nil {
		t.Fatalf("conditional revoke, answer lost and retried: %v, want success", err)
	}
	if lost != 1 {
		t.Fatalf("%d answers lost, want 1 (the retry found its change and wrote nothing)", lost)
	}
	if got := names(t, st); !slices.Equal(got, []string{"bob", "root"}) {
		t.Errorf("after the revoke: operators %v, want [bob root]", got)
	}

	_, rev, err = st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutOperatorIf(op("cat", "operator"), rev); err != nil {
		t.Fatalf("conditional add, answer lost and retried: %v, want success", err)
	}
	if err := st.DeleteOperator("bob"); err != nil {
		t.Fatalf("revoke, answer lost and retried: %v, want success", err)
	}
	if lost != 3 {
		t.Errorf("%d answers lost, want 3", lost)
	}
	if got := names(t, st); !slices.Equal(got, []string{"cat", "root"}) {
		t.Errorf("after the add and the revoke: operators %v, want [cat root]", got)
	}

	// Another process changes the operators between the lost answer and
	// the retry: the retry cannot tell, and reports the change.
	other, err := etcdstate.Open(t.Context(), u, etcdstate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	restore()
	restore = etcdstate.LoseOperatorAnswers(st, func() bool {
		if err := other.PutOperator(op("dan", "viewer")); err != nil {
			t.Error(err)
		}
		return true
	})
	_, rev, err = st.OperatorsAt()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteOperatorIf("cat", rev); !errors.Is(err, etcdstate.ErrOperatorsChanged) {
		t.Fatalf("revoke, answer lost, another change before the retry: %v, want ErrOperatorsChanged", err)
	}
	if got := names(t, st); !slices.Equal(got, []string{"dan", "root"}) {
		t.Errorf("operators %v, want [dan root]", got)
	}
}
