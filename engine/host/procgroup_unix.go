//go:build unix

package host

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// isolate starts cmd as the leader of a new session (hence also of a new
// process group), so that the plugin and everything it spawns — even
// commands that made their own process group, such as the exec built-in's —
// can be ended together.
func isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setpgid = false // setpgid after setsid fails (EPERM)
}

// killTree sends SIGKILL to the process group led by pid and to every
// process of the session led by pid (Linux: found in /proc). It repeats a
// few rounds to catch processes forked meanwhile.
func killTree(pid int) {
	if pid <= 1 {
		return
	}
	for round := 0; round < 5; round++ {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		found := 0
		for _, p := range sessionMembers(pid) {
			if p != os.Getpid() {
				_ = syscall.Kill(p, syscall.SIGKILL)
				found++
			}
		}
		if found == 0 {
			return
		}
	}
}

// sessionMembers lists the live (not zombie) processes whose session or
// process group is sid. Without /proc it finds nothing.
func sessionMembers(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session …; comm may hold spaces and ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 4 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		sess, _ := strconv.Atoi(f[3])
		if sess == sid || pgrp == sid {
			out = append(out, pid)
		}
	}
	return out
}
