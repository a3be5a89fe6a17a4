package sdk

import (
	"os"
	"syscall"
	"unsafe"

	"github.com/reprise-si/reprise/internal/proctree"
	"github.com/reprise-si/reprise/internal/wire"
)

// On Linux, reprise starts every plugin with a parent-death SIGKILL
// (engine/host parentDeath), so that a plugin that does not watch its host
// dies with it. An SDK plugin does watch its host (watchHost): it gives
// its calls a grace, kills what its steps left in its session, then exits,
// which a SIGKILL would cut short. So a plugin that reprise started (the
// handshake's cookie in the environment, the leader of its own session,
// SIGKILL as its parent-death signal) clears that signal here.
//
// Here, not in Serve: the kernel keeps the signal per thread, on the main
// thread of the plugin (the one that was forked), and the Go runtime runs
// package initialisation on the main thread; Serve's goroutine may run on
// any thread. A process started otherwise (a command of the exec built-in
// inherits the cookie, but is not a session leader) is left alone.
func init() {
	if os.Getenv(wire.MagicCookieKey) != wire.MagicCookieValue || !proctree.SessionLeader() {
		return
	}
	var sig int32
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0); e != 0 {
		return
	}
	if syscall.Signal(sig) == syscall.SIGKILL {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, 0, 0)
	}
}
