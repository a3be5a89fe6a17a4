package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openNoFollow opens a file of the state family without following a
// symbolic link at its last component (O_NOFOLLOW), then checks the opened
// file itself: a regular file with one name (a hard link planted in a
// shared folder could point at any file of the same file system).
func openNoFollow(path string, flag int, mode os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, mode)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("open %s: %w", path, ErrSymlink)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := checkOpened(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenAppend opens (creating it with mode 0600) a file of the state family
// for appending, as openNoFollow does: the JSON log beside the state file.
func OpenAppend(path string) (*os.File, error) {
	return openNoFollow(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

func checkOpened(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("open %s: not a regular file (%s)", f.Name(), info.Mode().Type())
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("open %s: the file has %d names (hard links); a state file has one: refusing it", f.Name(), st.Nlink)
	}
	return nil
}

// CheckDir checks the folder of the state file at path: it is refused when
// users other than its owner can write to it without the sticky bit (0777,
// 0775, a shared mount), since any of them could then replace the state
// file, its log, holder or socket. A warning (nil error) is returned when
// the folder belongs to another user than this process's, who could do the
// same.
func CheckDir(path string) (warning string, err error) {
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("state folder %s: %w", dir, err)
	}
	mode := info.Mode()
	if mode.Perm()&0o022 != 0 && mode&fs.ModeSticky == 0 {
		who := "other users"
		if mode.Perm()&0o002 == 0 {
			who = "its group"
		}
		return "", fmt.Errorf("state folder %s (mode %04o) can be written by %s without the sticky bit: anyone there could replace %s or plant links beside it; use a folder only you can write (chmod go-w %s), or set the sticky bit (chmod +t): %w",
			dir, mode.Perm(), who, filepath.Base(path), dir, ErrUnsafeDir)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Sprintf("warning: state folder %s belongs to uid %d, not to this process (uid %d): its owner can replace the state file", dir, st.Uid, os.Geteuid()), nil
	}
	return "", nil
}
