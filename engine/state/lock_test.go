package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLockSameProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(path, Options{Holder: "reprise run (test)"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{"second writer", Options{}},
		{"reader", Options{ReadOnly: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s2, err := Open(path, tt.opts)
			if err == nil {
				s2.Close()
				t.Fatal("second Open succeeded, want *LockedError")
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("refusal took %v, want at once", d)
			}
			var le *LockedError
			if !errors.As(err, &le) {
				t.Fatalf("err = %T %v, want *LockedError", err, err)
			}
			msg := err.Error()
			for _, want := range []string{path, "reprise run (test)", "pid"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Readers share the file, and exclude a writer.
	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	// A writer waits a little for readers (a status command) to let go,
	// then gives up.
	start := time.Now()
	var le *LockedError
	if _, err := Open(path, Options{}); !errors.As(err, &le) {
		t.Errorf("writer while readers hold the file: %v, want *LockedError", err)
	}
	if d := time.Since(start); d < readerWait || d > readerWait+time.Second {
		t.Errorf("writer gave up after %v, want about %v", d, readerWait)
	}
	r2.Close()
	go func() {
		time.Sleep(200 * time.Millisecond)
		r1.Close()
	}()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open while the last reader lets go: %v", err)
	}
	s.Close()
}

func TestLockOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	_, stdin, out := helper(t, "hold", path)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("helper: %q, want ready", out.Text())
	}
	start := time.Now()
	_, err := Open(path, Options{})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Open while another process holds the file: %v, want *LockedError", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("refusal took %v, want at once", d)
	}
	if le.Holder.PID == 0 || le.Holder.PID == os.Getpid() || le.Holder.Command != "state test helper" {
		t.Errorf("holder = %+v, want the helper process", le.Holder)
	}
	if !strings.Contains(err.Error(), "state test helper") || !strings.Contains(err.Error(), path) {
		t.Errorf("message %q does not name the file and the holder", err)
	}
	stdin.Close() // the helper closes its store and exits
	var s *Store
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, err = Open(path, Options{}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("Open after the helper closed: %v", err)
	}
	s.Close()
}

func TestLockRefusesOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(path, Options{Holder: "parent test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, out := helper(t, "open", path)
	if !out.Scan() {
		t.Fatal("helper printed nothing")
	}
	if got := out.Text(); !strings.HasPrefix(got, "error *state.LockedError") || !strings.Contains(got, "parent test") {
		t.Errorf("helper: %q, want a *LockedError naming the parent", got)
	}
}

func TestStaleHolderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	// A holder file left by a process that is gone (SIGKILL) is ignored.
	if err := writeHolder(path, Holder{PID: 1 << 22, Command: "ghost", Host: mustHostname(t), Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if h := readHolder(path); h.PID != 0 {
		t.Errorf("readHolder of a dead process = %+v, want zero", h)
	}
	s, err := Open(path, Options{Holder: "new"})
	if err != nil {
		t.Fatal(err)
	}
	if h := readHolder(path); h.Command != "new" {
		t.Errorf("holder after Open = %+v, want new", h)
	}
	s.Close()
}

func mustHostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLockedBeforeHolderFile: a writer that has taken the lock but not yet
// written its holder file (and a stale holder file of a dead process left
// beside it) is still named, from the kernel's lock table: never "holder
// unknown", and a second writer does not wait as if readers held it.
func TestLockedBeforeHolderFile(t *testing.T) {
	path, _ := mustStateFile(t)
	stale, _ := json.Marshal(Holder{PID: 999999, Command: "reprise run (killed)", Host: mustHostname(t)})
	if err := os.WriteFile(holderPath(path), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		start := time.Now()
		_, err := Open(path, Options{ReadOnly: ro})
		var le *LockedError
		if !errors.As(err, &le) || le.Holder.PID != os.Getpid() || le.Shared {
			t.Fatalf("Open(ReadOnly=%v) = %v, want *LockedError naming pid %d", ro, err, os.Getpid())
		}
		if d := time.Since(start); !ro && d > readerWait/2 {
			t.Errorf("a writer refused by a writer waited %v as if readers held the file", d)
		}
		t.Log(err)
	}
}
