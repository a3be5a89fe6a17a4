package state

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestOperatorsStoredAndRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if ops, err := s.Operators(); err != nil || len(ops) != 0 {
		t.Fatalf("fresh file: %v, %v; want no operators", ops, err)
	}
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, n := range []string{"zoe", "alice"} {
		if err := s.PutOperator(Operator{Name: n, Role: "viewer", TokenID: "id-" + n, Hash: "h", Created: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutOperator(Operator{Name: "", Role: "viewer"}); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("empty name: %v, want ErrInvalidChange", err)
	}
	if err := s.DeleteOperator("bob"); !errors.Is(err, ErrOperatorNotFound) {
		t.Fatalf("unknown: %v, want ErrOperatorNotFound", err)
	}
	if err := s.DeleteOperator("zoe"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ops, err := r.Operators()
	if err != nil || len(ops) != 1 || ops[0].Name != "alice" || ops[0].TokenID != "id-alice" || !ops[0].Created.Equal(now) {
		t.Fatalf("reopened: %+v, %v; want alice only", ops, err)
	}
	if err := r.PutOperator(Operator{Name: "x"}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only put: %v, want ErrReadOnly", err)
	}
}
