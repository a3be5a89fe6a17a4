//go:build unix

package builtin

import (
	"os/exec"
	"syscall"
	"time"
)

// newGroup starts cmd in its own process group, so that cancelling ends
// everything it started.
// On Linux the command is also killed if the plugin dies (parent-death
// signal), and the plugin ends what is left of the group when reprise dies.
func newGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	parentDeath(cmd.SysProcAttr)
}

// endGroup sends SIGTERM to the process group pgid, then SIGKILL after grace.
func endGroup(pgid int, grace time.Duration) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // already gone
	}
	time.AfterFunc(grace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
}
