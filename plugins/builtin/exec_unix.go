//go:build unix

package builtin

import (
	"os"
	"syscall"
	"time"
)

// endGroup sends SIGTERM to the process group pgid, then SIGKILL after grace.
func endGroup(pgid int, grace time.Duration) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // already gone
	}
	time.AfterFunc(grace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
}

// processExists reports whether a process pid exists (for the outputs
// folders' sweep: one that exists under another user counts).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// ownedByMe reports whether this process's user owns the file fi describes.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
