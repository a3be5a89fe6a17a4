//go:build unix

package host

import (
	"os/exec"
	"syscall"

	"github.com/reprise-si/reprise/internal/proctree"
)

// isolate starts cmd as the leader of a new session (hence also of a new
// process group), so that the plugin and everything it spawns — even
// commands that made their own process group, such as the exec built-in's —
// can be ended together. On Linux it also dies with reprise (parentDeath).
func isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setpgid = false // setpgid after setsid fails (EPERM)
	parentDeath(cmd.SysProcAttr)
}

// killTree sends SIGKILL to the process group led by pid and to every
// process of the session led by pid (Linux: found in /proc).
func killTree(pid int) { proctree.KillSession(pid) }
