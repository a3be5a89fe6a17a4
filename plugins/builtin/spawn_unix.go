//go:build unix

package builtin

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// copyBufs are the buffers that read commands' output: two per running
// command, reused (os/exec allocated two of 32 KiB per command).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// drain copies r into w until r ends or is closed, then closes r.
func drain(r io.ReadCloser, w io.Writer, done chan<- struct{}) {
	bp := copyBufs.Get().(*[]byte)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	copyBufs.Put(bp)
	_ = r.Close()
	done <- struct{}{}
}

// runProcess starts spec with stdin, stdout and stderr, waits for it and
// for its output (ioWait at most once it has exited), and returns how it
// ended: exitErr is non-nil when it ran and failed (exit status, signal,
// output still open after ioWait); err when it could not start or ctx was
// cancelled (its whole process group is then ended: SIGTERM, SIGKILL
// after killGrace).
func runProcess(ctx context.Context, spec spawnSpec, stdin *os.File, stdout, stderr io.Writer) (exitErr, err error) {
	outR, outW, err := newPipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := newPipe()
	if err != nil {
		_ = outR.Close()
		_ = syscall.Close(outW)
		return nil, err
	}
	p, err := startProcess(spec, stdin, outW, errW)
	_ = syscall.Close(outW)
	_ = syscall.Close(errW)
	if err != nil {
		_ = outR.Close()
		_ = errR.Close()
		return nil, err
	}
	done := make(chan struct{}, 2)
	go drain(outR, stdout, done)
	go drain(errR, stderr, done)
	stop := context.AfterFunc(ctx, func() { endGroup(p.pid, killGrace) })
	defer stop()
	exitErr = p.wait()
	if !awaitDrains(done, outR, errR) && exitErr == nil {
		exitErr = exec.ErrWaitDelay
	}
	return exitErr, nil
}

// awaitDrains waits for both drains; if they are not done ioWait after
// the command ended, it closes their pipes (which ends them) and reports
// false.
func awaitDrains(done <-chan struct{}, pipes ...io.Closer) bool {
	left := len(pipes)
	for left > 0 {
		select {
		case <-done:
			left--
			continue
		default:
		}
		break
	}
	if left == 0 {
		return true
	}
	t := time.NewTimer(ioWait)
	defer t.Stop()
	for left > 0 {
		select {
		case <-done:
			left--
		case <-t.C:
			for _, p := range pipes {
				_ = p.Close()
			}
			for ; left > 0; left-- {
				<-done
			}
			return false
		}
	}
	return true
}

// newPipe returns a pipe for a command's output: its read end goes through
// the runtime's poller (a goroutine waiting on it holds no thread, and
// closing it ends the wait), its write end, for the command, blocks as
// commands expect. Both are closed on exec.
func newPipe() (r *os.File, w int, err error) {
	var p [2]int
	if err := pipeCloexec(p[:]); err != nil {
		return nil, -1, &os.SyscallError{Syscall: "pipe", Err: err}
	}
	if err := syscall.SetNonblock(p[0], true); err != nil {
		_ = syscall.Close(p[0])
		_ = syscall.Close(p[1])
		return nil, -1, &os.SyscallError{Syscall: "fcntl", Err: err}
	}
	return os.NewFile(uintptr(p[0]), "|0"), p[1], nil
}

// process is a started command.
type process struct {
	pid   int
	pidfd int // a pidfd of the process, or -1
}

// startProcess starts spec in a process group of its own (cancelling ends
// everything it started), with stdin and the write ends of its output
// pipes. Nothing in the attributes forces the runtime off its
// clone(CLONE_VFORK|CLONE_VM) path.
func startProcess(spec spawnSpec, stdin *os.File, stdout, stderr int) (*process, error) {
	sys := &syscall.SysProcAttr{Setpgid: true}
	parentDeath(sys)
	p := &process{pidfd: -1}
	askPidfd(sys, &p.pidfd)
	pid, _, err := syscall.StartProcess(spec.path, spec.argv, &syscall.ProcAttr{
		Dir:   spec.dir,
		Env:   spec.env,
		Files: []uintptr{stdin.Fd(), uintptr(stdout), uintptr(stderr)},
		Sys:   sys,
	})
	if err != nil {
		return nil, err
	}
	p.pid = pid
	return p, nil
}

// wait reaps the process and says how it ended (nil: exit status 0).
func (p *process) wait() error {
	ws, err := p.reap()
	if err != nil {
		return err
	}
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	return &exitError{ws: ws}
}

// blockingWait reaps pid, its thread blocked until the process ends.
func blockingWait(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			if err != nil {
				return ws, &os.SyscallError{Syscall: "wait", Err: err}
			}
			return ws, nil
		}
	}
}

// exitError is how a command that ran ended badly, in os/exec's words:
// "exit status 3", "signal: killed (core dumped)".
type exitError struct{ ws syscall.WaitStatus }

func (e *exitError) Error() string {
	var s string
	switch {
	case e.ws.Exited():
		s = "exit status " + strconv.Itoa(e.ws.ExitStatus())
	case e.ws.Signaled():
		s = "signal: " + e.ws.Signal().String()
	default:
		s = "wait status " + strconv.Itoa(int(e.ws))
	}
	if e.ws.CoreDump() {
		s += " (core dumped)"
	}
	return s
}
