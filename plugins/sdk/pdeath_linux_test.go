package sdk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/wire"
)

// envPdeathChild makes TestPdeathChild run: the child process of
// TestInitClearsParentDeathSignal.
const envPdeathChild = "REPRISE_TEST_PDEATH_CHILD"

// TestPdeathChild is the child of TestInitClearsParentDeathSignal (skipped
// otherwise): it says "ready" on stdout, its package initialised, and waits.
func TestPdeathChild(t *testing.T) {
	if os.Getenv(envPdeathChild) == "" {
		t.Skip("the child process of TestInitClearsParentDeathSignal")
	}
	fmt.Println("ready")
	time.Sleep(30 * time.Second)
}

// TestInitClearsParentDeathSignal starts the test binary as a child with a
// parent-death SIGKILL, the way the plugin host starts a plugin, from a
// thread that then ends (the kernel sends the signal when the forking
// thread ends). A plugin that reprise started (cookie, session leader)
// clears the signal in the SDK's init and survives, to watch its host
// itself; any other process keeps it and is killed.
func TestInitClearsParentDeathSignal(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cookie, setsid bool
		survives       bool
	}{
		{"started by reprise", true, true, true},
		{"without the handshake cookie", false, true, false},
		{"not a session leader (an exec command)", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPdeathChild$")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, wire.MagicCookieKey+"=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, envPdeathChild+"=1")
			if tc.cookie {
				cmd.Env = append(cmd.Env, wire.MagicCookieKey+"="+wire.MagicCookieValue)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: tc.setsid, Pdeathsig: syscall.SIGKILL}
			waited := startReadyFromDyingThread(t, cmd)
			select {
			case err := <-waited:
				if tc.survives {
					t.Fatalf("the child was killed when the thread that started it ended (%v): the SDK did not clear its parent-death signal", err)
				}
			case <-time.After(map[bool]time.Duration{true: time.Second, false: 10 * time.Second}[tc.survives]):
				_ = cmd.Process.Kill()
				<-waited
				if !tc.survives {
					t.Fatal("the child still ran 10s after the thread that started it ended: its parent-death signal was cleared")
				}
			}
		})
	}
}

// startReadyFromDyingThread starts cmd from a goroutine that waits for its
// "ready" line, then exits locked to its thread (not the main thread, which
// the runtime never ends), so that the thread ends; it returns the channel
// that gets cmd.Wait's error.
func startReadyFromDyingThread(t *testing.T, cmd *exec.Cmd) chan error {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread() // the goroutine below runs on another thread
	defer runtime.UnlockOSThread()
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
			if err := cmd.Start(); err != nil {
				started <- err
				return
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err == nil && line != "ready\n" {
				err = fmt.Errorf("child said %q, want ready", line)
			}
			started <- err
		}()
		err := <-started
		if err == nil {
			break
		}
		if err != errMain || try == 100 {
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
			t.Fatal(err)
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	return waited
}
