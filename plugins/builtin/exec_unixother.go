//go:build unix && !linux

package builtin

import "syscall"

// parentDeath does nothing where there is no parent-death signal; the
// plugin still ends the command's group when reprise dies.
func parentDeath(*syscall.SysProcAttr) {}
