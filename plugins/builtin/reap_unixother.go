//go:build unix && !linux

package builtin

import "syscall"

// askPidfd does nothing where there are no pidfds.
func askPidfd(*syscall.SysProcAttr, *int) {}

// pipeCloexec makes a pipe whose ends are closed on exec.
func pipeCloexec(p []int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p); err != nil {
		return err
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return nil
}

// reap waits for the process, a thread blocked in wait4.
func (p *process) reap() (syscall.WaitStatus, error) { return blockingWait(p.pid) }
