package host

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// startFromDyingThread starts cmd (sleep, with a parent-death SIGKILL)
// through start from a goroutine that then exits locked to its thread, so
// that the Go runtime ends the thread; it returns the channel that gets
// cmd.Wait's error. The runtime never ends the main thread (it parks it
// instead): the caller holds its own thread meanwhile, so that the
// goroutine runs on another one, and a goroutine that still lands on the
// main thread tries again.
func startFromDyingThread(t *testing.T, cmd *exec.Cmd, start func(*exec.Cmd) error) chan error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errMain := errors.New("on the main thread")
	for try := 0; ; try++ {
		started := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked but on the main thread: the thread ends with the goroutine
			if syscall.Gettid() == syscall.Getpid() {
				runtime.UnlockOSThread()
				started <- errMain
				return
			}
			started <- start(cmd)
		}()
		err := <-started
		if err == nil {
			break
		}
		if err != errMain || try == 100 {
			t.Fatal(err)
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	return waited
}

// TestStartProcessOutlivesCallersThread: a plugin started from a goroutine
// whose thread then ends is not killed by its parent-death signal, which
// the kernel ties to the forking thread (go.dev/issue/27505): startProcess
// forks from a thread that never ends. The same start with cmd.Start is
// killed, which shows the test can see the difference.
func TestStartProcessOutlivesCallersThread(t *testing.T) {
	plain := startFromDyingThread(t, exec.Command("sleep", "600"), (*exec.Cmd).Start)
	select {
	case err := <-plain:
		t.Logf("started with cmd.Start from the ending thread: %v (as expected)", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a process started with cmd.Start from a thread that ended still runs 10s later: " +
			"the kernel did not send the parent-death signal, so this test cannot check startProcess")
	}
	cmd := exec.Command("sleep", "600")
	ours := startFromDyingThread(t, cmd, startProcess)
	select {
	case err := <-ours:
		t.Fatalf("started with startProcess, the process ended when the caller's thread did: %v", err)
	case <-time.After(time.Second):
	}
	_ = cmd.Process.Kill()
	<-ours
}
