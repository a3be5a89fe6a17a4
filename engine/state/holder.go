package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func holderPath(path string) string { return path + ".holder" }

func newHolder(command string) Holder {
	if command == "" {
		command = strings.Join(os.Args, " ")
	}
	host, _ := os.Hostname()
	return Holder{PID: os.Getpid(), Command: command, Host: host, Since: time.Now().UTC().Truncate(time.Second)}
}

// writeHolder replaces the holder file: the old one is removed (a planted
// symlink is removed, not followed) and the new one created exclusively,
// without following a symlink.
func writeHolder(path string, h Holder) error {
	b, _ := json.Marshal(h)
	hp := holderPath(path)
	if err := os.Remove(hp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("write holder file %s: %w", hp, err)
	}
	f, err := os.OpenFile(hp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write holder file %s: %w", hp, err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write holder file %s: %w", hp, err)
	}
	return nil
}

// readHolder returns what the holder file says, or a zero Holder when it
// is missing, unreadable, a symlink, or left by a process of this host
// that is gone.
func readHolder(path string) Holder {
	f, err := openNoFollow(holderPath(path), os.O_RDONLY, 0)
	if err != nil {
		return Holder{}
	}
	defer f.Close()
	b := make([]byte, 64<<10)
	n, _ := f.Read(b)
	var h Holder
	if json.Unmarshal(b[:n], &h) != nil || h.PID <= 0 {
		return Holder{}
	}
	if host, _ := os.Hostname(); host == h.Host && errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH) {
		return Holder{}
	}
	return h
}

func removeHolder(path string, h Holder) {
	if cur := readHolder(path); cur.PID == h.PID && cur.Since.Equal(h.Since) {
		_ = os.Remove(holderPath(path))
	}
}

// lockedError describes who holds the lock on the state file f (open on
// path). The kernel's lock table (/proc/locks) names the process that holds
// an exclusive lock on the file's inode even before that process has
// written its holder file, so that a writer is never reported as unknown:
// the holder file adds its command line, else /proc/PID/cmdline does.
func lockedError(path string, f *os.File) *LockedError {
	le := &LockedError{Path: path, Holder: readHolder(path)}
	if f == nil {
		return le
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil {
		return le
	}
	pid, shared, ok := flockHolder(st.Dev, st.Ino)
	switch {
	case !ok:
		// No lock table: trust the holder file alone.
	case shared:
		host, _ := os.Hostname()
		le.Shared = true
		le.Holder = Holder{PID: pid, Command: procCommand(pid), Host: host}
	case le.Holder.PID != pid:
		host, _ := os.Hostname()
		le.Holder = Holder{PID: pid, Command: procCommand(pid), Host: host}
	}
	return le
}

// flockHolder reads /proc/locks for the flock on inode ino of device dev:
// the pid of a process holding it and whether the lock is shared (readers).
// An exclusive lock wins over shared ones in the answer.
func flockHolder(dev uint64, ino uint64) (pid int, shared, ok bool) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, false, false
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		// "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; a blocked
		// waiter has "->" after the number.
		if len(fields) < 6 || string(fields[1]) == "->" || string(fields[1]) != "FLOCK" || string(fields[5]) != want {
			continue
		}
		p, err := strconv.Atoi(string(fields[4]))
		if err != nil {
			continue
		}
		if string(fields[3]) == "WRITE" {
			return p, false, true
		}
		if !found {
			pid, shared, found = p, true, true
		}
	}
	return pid, shared, true
}

// procCommand is the command line of pid, as /proc shows it ("" if gone).
func procCommand(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
