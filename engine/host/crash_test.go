package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
)

func TestCrashFailsCallAndRestarts(t *testing.T) {
	tests := []struct {
		do       string
		wantText []string
	}{
		{"panic", []string{"database index corrupted", "exit status 2"}},
		{"exit", []string{"exit status 3", "licence server unreachable"}},
		{"sigkill", []string{"signal: killed"}},
	}
	for _, tt := range tests {
		t.Run(tt.do, func(t *testing.T) {
			h := newHost(t, hostOpts(t))
			ctx := ctxT(t, 60*time.Second)
			first, err := h.Restore(ctx, req("crashy", "warmup", map[string]any{"do": "ok"}), nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = h.Restore(ctx, req("crashy", "ris", map[string]any{"do": tt.do}), nil)
			if !errors.Is(err, host.ErrCrashed) {
				t.Fatalf("err = %v, want ErrCrashed", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("crash took %s to report", d)
			}
			for _, w := range append(tt.wantText, `plugin "crashy"`, `node "ris"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, lacks %q", err, w)
				}
			}
			again, err := h.Restore(ctx, req("crashy", "ris", map[string]any{"do": "ok"}), nil)
			if err != nil {
				t.Fatalf("call after crash: %v", err)
			}
			if again.Outputs["pid"] == first.Outputs["pid"] {
				t.Errorf("pid %s served after the crash: want a new process", again.Outputs["pid"])
			}
		})
	}
}

func TestCrashFailsEveryCallInFlight(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	errs := make(chan error, 3)
	reached := make(chan struct{}, 3)
	for i := range 3 {
		go func() {
			var once sync.Once
			_, err := h.Restore(ctx, req("crashy", "hang"+strconv.Itoa(i), map[string]any{"do": "hang"}),
				func(step.Event) { once.Do(func() { reached <- struct{}{} }) })
			errs <- err
		}()
	}
	for range 3 { // every hanging call is running in the plugin
		select {
		case <-reached:
		case <-ctx.Done():
			t.Fatal("hanging calls did not start")
		}
	}
	if _, err := h.Restore(ctx, req("crashy", "killer", map[string]any{"do": "exit"}), nil); !errors.Is(err, host.ErrCrashed) {
		t.Fatalf("killer: err = %v, want ErrCrashed", err)
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, host.ErrCrashed) {
			t.Errorf("hanging call: err = %v, want ErrCrashed", err)
		}
	}
}

func TestDeadlineAndCancel(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	before, err := h.Restore(ctx, req("crashy", "warmup", map[string]any{"do": "ok"}), nil) // started: the deadline measures the call only
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = h.Restore(short, req("crashy", "slow", map[string]any{"do": "hang"}), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("deadline honoured after %s", d)
	}
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, ccancel)
	_, err = h.Restore(cctx, req("exec", "slow", map[string]any{"restore": []any{"sleep", "60"}}), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("exec: err = %v, want Canceled", err)
	}
	// The plugin survives a call past its deadline: the same process answers.
	after, err := h.Restore(ctx, req("crashy", "after", map[string]any{"do": "ok"}), nil)
	if err != nil || after.Outputs["pid"] != before.Outputs["pid"] {
		t.Errorf("call after the deadline: pid %s (before: %s), %v; want the same process", after.Outputs["pid"], before.Outputs["pid"], err)
	}
}

func TestExecCancelEndsProcessGroup(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	pidfile := filepath.Join(t.TempDir(), "pid")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		waitFile(pidfile, 20*time.Second)
		cancel()
	}()
	// The command starts a grandchild in its process group.
	_, err := h.Restore(cctx, req("exec", "n", map[string]any{
		"restore": []any{"sh", "-c", `sleep 600 & echo $! > "` + pidfile + `"; wait`}}), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	waitGone(t, readPid(t, pidfile), 10*time.Second)
}

func TestCloseLeavesNoOrphan(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	pidfile := filepath.Join(t.TempDir(), "pid")
	res, err := h.Restore(ctx, req("crashy", "spawner", map[string]any{"do": "spawn", "pidfile": pidfile}), nil)
	if err != nil || res.Status != step.Succeeded {
		t.Fatalf("Restore = %+v, %v", res, err)
	}
	child := readPid(t, pidfile)
	pluginPid, _ := strconv.Atoi(res.Outputs["pid"])
	if !alive(child) {
		t.Fatalf("child %d not running before Close", child)
	}
	start := time.Now()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Close took %s", d)
	}
	waitGone(t, child, 5*time.Second)
	waitGone(t, pluginPid, 5*time.Second)
	if _, err := h.Restore(ctx, req("noop", "late", nil), nil); !errors.Is(err, host.ErrClosed) {
		t.Errorf("call after Close: err = %v, want ErrClosed", err)
	}
}

func TestCrashLeavesNoOrphan(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	pidfile := filepath.Join(t.TempDir(), "pid")
	if _, err := h.Restore(ctx, req("crashy", "spawner", map[string]any{"do": "spawn", "pidfile": pidfile}), nil); err != nil {
		t.Fatal(err)
	}
	child := readPid(t, pidfile)
	if _, err := h.Restore(ctx, req("crashy", "crasher", map[string]any{"do": "sigkill"}), nil); !errors.Is(err, host.ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	waitGone(t, child, 10*time.Second)
}

func waitFile(path string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	waitFile(path, 10*time.Second)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// alive reports whether pid runs (a zombie counts as ended).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return !(i >= 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X'))
}

func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still running %s later: orphan", pid, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
