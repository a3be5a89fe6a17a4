package host_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// envMiniHost makes the test binary act as a reprise engine: it starts the
// exec built-in with a long command that writes its pid to the named file,
// and waits forever.
const envMiniHost = "REPRISE_TEST_MINIHOST"

// envMiniHostOrphans makes the mini engine first run a step that leaves
// a background child (its pid in DIR/left) and start one that ignores
// SIGTERM (DIR/stubborn) with a child (DIR/child).
const envMiniHostOrphans = "REPRISE_TEST_MINIHOST_ORPHANS"

func runMiniHost(pidfile string) {
	h := host.New(host.Options{BuiltinCommand: hosttest.BuiltinCommand})
	if dir := os.Getenv(envMiniHostOrphans); dir != "" {
		_, _ = h.Restore(context.Background(), req("exec", "left", sh(`sleep 600 & echo $! > `+dir+`/left`)), nil)
		_, _ = h.Restore(context.Background(), req("exec", "stubborn", sh(`trap '' TERM; sleep 600 & echo $! > `+dir+`/child; echo $$ > `+dir+`/stubborn; while :; do sleep 1; done`)), nil)
		select {}
	}
	_, _ = h.Restore(context.Background(), req("exec", "long", map[string]any{
		"restore": []any{"sh", "-c", `echo $$ > "` + pidfile + `.tmp" && mv "` + pidfile + `.tmp" "` + pidfile + `" && exec sleep 600`}}), nil)
	select {}
}

// TestPluginEndsWhenHostDies kills the engine with SIGKILL (no Close): the
// plugin notices, cancels its calls — ending the exec command's group —
// and exits.
func TestPluginEndsWhenHostDies(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	mini := exec.Command(os.Args[0], "-test.run=^$")
	mini.Env = append(os.Environ(), envMiniHost+"="+pidfile)
	if err := mini.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mini.Process.Kill(); _ = mini.Wait() }()
	cmdPid := readPid(t, pidfile)
	pluginPid := parentOf(t, cmdPid)
	if err := mini.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = mini.Wait()
	waitGone(t, cmdPid, 10*time.Second)
	waitGone(t, pluginPid, 15*time.Second)
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, err := strconv.Atoi(f[1])
	if err != nil || ppid <= 1 {
		t.Fatalf("parent of %d: %q", pid, f[1])
	}
	_ = syscall.Kill(ppid, 0)
	return ppid
}
