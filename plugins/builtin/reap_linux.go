package builtin

import (
	"os"
	"syscall"
)

// askPidfd asks the kernel for a pidfd of the process to start (clone's
// CLONE_PIDFD), stored in fd (-1 where the kernel has none).
func askPidfd(sys *syscall.SysProcAttr, fd *int) { sys.PidFD = fd }

// pipeCloexec makes a pipe whose ends are closed on exec, atomically.
func pipeCloexec(p []int) error { return syscall.Pipe2(p, syscall.O_CLOEXEC) }

// reap waits for the process through its pidfd in the runtime's poller
// (the goroutine parks; no thread stays blocked in waitid for each running
// command), then reaps it. Without a pidfd the poller can watch, it blocks
// a thread in wait4 as os/exec does.
func (p *process) reap() (syscall.WaitStatus, error) {
	if p.pidfd < 0 {
		return blockingWait(p.pid)
	}
	if err := syscall.SetNonblock(p.pidfd, true); err != nil {
		_ = syscall.Close(p.pidfd)
		return blockingWait(p.pid)
	}
	f := os.NewFile(uintptr(p.pidfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return blockingWait(p.pid)
	}
	var (
		ws     syscall.WaitStatus
		werr   error
		reaped bool
	)
	rerr := rc.Read(func(uintptr) bool {
		for {
			pid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
			switch {
			case err == syscall.EINTR:
				continue
			case err != nil:
				werr = &os.SyscallError{Syscall: "wait", Err: err}
				return true
			case pid == p.pid:
				reaped = true
				return true
			}
			return false // still running: wait until the pidfd is readable
		}
	})
	switch {
	case reaped:
		return ws, nil
	case werr != nil:
		return ws, werr
	case rerr != nil: // the pidfd is not pollable here
		return blockingWait(p.pid)
	}
	return blockingWait(p.pid)
}
