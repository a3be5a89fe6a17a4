package builtin

import "syscall"

// parentDeath makes the kernel send SIGKILL to the command if the plugin
// process dies first.
func parentDeath(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
