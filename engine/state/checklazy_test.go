package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// With CheckOnFirstWrite, a writer opens a damaged file (Open checks only
// the meta pages and schema), but its first write — and every later one —
// is refused with the *CorruptError Open gives without the option, and the
// file is left byte for byte as it was; a session that writes nothing
// never reads the whole file.
func TestCheckOnFirstWrite(t *testing.T) {
	path, good := mustStateFile(t)
	damaged := bytes.Clone(good)
	i := bytes.Index(damaged, []byte("needle-0041"))
	if i < 0 {
		t.Fatal("needle not found")
	}
	damaged[i+3] ^= 0x01
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{NoSync: true}); err == nil {
		s.Close()
		t.Fatal("Open without CheckOnFirstWrite accepted the damaged file")
	}
	s, err := Open(path, Options{NoSync: true, CheckOnFirstWrite: true})
	if err != nil {
		t.Fatalf("Open with CheckOnFirstWrite = %v, want the check left for the first write", err)
	}
	if _, err := s.Run("r1"); err != nil {
		t.Fatalf("a read before any write: %v", err)
	}
	ctx := context.Background()
	for k := range 2 {
		err := s.Apply(ctx, Change{RunID: "r1", Node: &NodeRecord{ID: "n0150", State: NodeFailed},
			Entry: &Entry{Type: EntryFailed, NodeID: "n0150"}})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Written || !strings.Contains(err.Error(), "left untouched") {
			t.Fatalf("write %d = %T %v, want *CorruptError saying the file was left untouched", k+1, err, err)
		}
	}
	if err := s.PutOperator(Operator{Name: "ops"}); err == nil {
		t.Fatal("PutOperator wrote to a file found damaged")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, damaged) {
		t.Fatal("the damaged file was modified")
	}

	// A sound file: a session that only reads leaves it as it was, and one
	// that writes checks it first and writes.
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{NoSync: true, CheckOnFirstWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify("r1"); err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if s.checked {
		t.Error("a session that wrote nothing checked the whole file")
	}
	s.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(after, good) {
		t.Fatal("a session that wrote nothing changed the file")
	}
	s, err = Open(path, Options{NoSync: true, CheckOnFirstWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Apply(ctx, Change{RunID: "r1", Entry: &Entry{Type: EntryRunResumed}}); err != nil {
		t.Fatal(err)
	}
	if !s.checked {
		t.Error("the first write did not check the file")
	}
}
