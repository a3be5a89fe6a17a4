package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlantedSymlinks: links planted in the state folder at the state file
// and its holder file must not make reprise write where they point.
func TestPlantedSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "reprise.db")

	// The state file itself.
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if _, err := Open(path, Options{ReadOnly: ro}); !errors.Is(err, ErrSymlink) {
			t.Errorf("Open(ReadOnly=%v) of a symlinked state file = %v, want ErrSymlink", ro, err)
		}
	}
	os.Remove(path)

	// The holder file: replaced, not followed.
	if err := os.Symlink(victim, holderPath(path)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Holder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(holderPath(path)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("holder file after Open: %v, %v; want a regular file in place of the link", fi, err)
	}
	s.Close()
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the file a planted holder link pointed at was changed: %q", b)
	}

	// A hard link to another file as the log.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(other, path+".log"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAppend(path + ".log"); err == nil || !strings.Contains(err.Error(), "hard links") {
		t.Errorf("OpenAppend of a hard-linked log = %v, want a refusal", err)
	}
	os.Remove(path + ".log")
	if err := os.Symlink(victim, path+".log"); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAppend(path + ".log"); !errors.Is(err, ErrSymlink) {
		t.Errorf("OpenAppend of a symlinked log = %v, want ErrSymlink", err)
	}
}

// TestSharedFolder: a state folder others can write to is refused unless
// it has the sticky bit.
func TestSharedFolder(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true},
		{0o755, true},
		{0o777, false},
		{0o775, false},
		{0o777 | os.ModeSticky, true},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.Chmod(dir, tt.mode); err != nil {
			t.Fatal(err)
		}
		s, err := Open(filepath.Join(dir, "reprise.db"), Options{NoSync: true})
		if tt.ok {
			if err != nil {
				t.Errorf("mode %v: %v, want the file opened", tt.mode, err)
				continue
			}
			s.Close()
		} else if !errors.Is(err, ErrUnsafeDir) {
			t.Errorf("mode %v: Open = %v, want ErrUnsafeDir", tt.mode, err)
		} else {
			t.Log(err)
		}
	}
}
