//go:build !linux

package host

import (
	"os/exec"
	"syscall"
)

// parentDeath does nothing: only Linux has a parent-death signal that
// os/exec sets. A plugin outlives a reprise that dies without ending it,
// unless it watches its parent (plugins/sdk and plugins/python do).
func parentDeath(*syscall.SysProcAttr) {}

// startProcess starts cmd.
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
