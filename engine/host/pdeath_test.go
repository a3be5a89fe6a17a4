package host_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// envMiniHostRaw makes the test binary act as a reprise engine that starts
// the raw plugin (the binary it names, built from testdata/rawplugin) and
// calls its Restore, which hangs; once the plugin has answered with a log
// line, the engine writes $REPRISE_TEST_RAW_PIDFILE.busy.
const envMiniHostRaw = "REPRISE_TEST_MINIHOST_RAW"

// envRawPidfile is where the raw plugin writes its pid.
const envRawPidfile = "REPRISE_TEST_RAW_PIDFILE"

func runRawMiniHost(bin string) {
	h := host.New(host.Options{Plugins: map[string]graphs.PluginRef{"raw": {Path: bin}}})
	busy := os.Getenv(envRawPidfile) + ".busy"
	_, _ = h.Restore(context.Background(), req("raw", "hypervisor", nil), func(step.Event) {
		_ = os.WriteFile(busy, []byte("1"), 0o644)
	})
	select {}
}

// buildRawPlugin builds testdata/rawplugin, a plugin written on go-plugin
// alone (no plugins/sdk), into a temporary folder.
func buildRawPlugin(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build testdata/rawplugin: the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "rawplugin")
	if out, err := exec.Command(gobin, "build", "-o", bin, "./testdata/rawplugin").CombinedOutput(); err != nil {
		t.Fatalf("build testdata/rawplugin: %v\n%s", err, out)
	}
	return bin
}

// TestRawPluginEndsWhenHostDies kills an engine with SIGKILL while a call
// of a plugin written on go-plugin alone is in flight. The plugin does not
// watch its parent and ignores SIGTERM; on Linux the parent-death SIGKILL
// ends it at once.
func TestRawPluginEndsWhenHostDies(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a parent-death signal exists on Linux only")
	}
	bin := buildRawPlugin(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	mini := exec.Command(os.Args[0], "-test.run=^$")
	mini.Env = append(os.Environ(), envMiniHostRaw+"="+bin, envRawPidfile+"="+pidfile)
	if err := mini.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mini.Process.Kill(); _ = mini.Wait() }()
	pluginPid := readPid(t, pidfile)
	waitFile(pidfile+".busy", 30*time.Second)
	if _, err := os.Stat(pidfile + ".busy"); err != nil {
		t.Fatalf("the engine got no event from the raw plugin's Restore: %v", err)
	}
	if !alive(pluginPid) {
		t.Fatalf("raw plugin %d is not running before the engine is killed", pluginPid)
	}
	if err := mini.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = mini.Wait()
	waitGone(t, pluginPid, 2*time.Second)
}
