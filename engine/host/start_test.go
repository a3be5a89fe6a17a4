package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/graphs"
)

func TestStartErrors(t *testing.T) {
	opts := hostOpts(t)
	dir := opts.GraphDir
	writeScript(t, filepath.Join(dir, "noexec"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(dir, "noexec"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts.Plugins["missing"] = graphs.PluginRef{Path: "bin/missing-plugin"}
	opts.Plugins["noexec"] = graphs.PluginRef{Path: "noexec"}
	opts.Plugins["folder"] = graphs.PluginRef{Path: "folder"}
	opts.StartTimeout = 3 * time.Second // a test binary under -race on a loaded machine may take a second to start
	h := newHost(t, opts)
	tests := []struct {
		plugin   string
		want     error
		wantText []string
	}{
		{"missing", host.ErrNotFound, []string{filepath.Join(dir, "bin/missing-plugin")}},
		{"noexec", host.ErrNotExecutable, []string{"no execute bit"}},
		{"folder", host.ErrNotExecutable, []string{"folder"}},
		{"silent", host.ErrHandshake, []string{"hello, I am not a plugin"}},
		{"badcookie", host.ErrHandshake, []string{"This binary is a plugin"}},
		{"slowstart", host.ErrStartTimeout, []string{"within 3s"}},
		{"pharmacy", host.ErrUndeclared, []string{"exec, http, manual, noop"}},
	}
	for _, tt := range tests {
		t.Run(tt.plugin, func(t *testing.T) {
			start := time.Now()
			_, err := h.Describe(ctxT(t, 20*time.Second), tt.plugin)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, w := range append(tt.wantText, `plugin "`+tt.plugin+`"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, lacks %q", err, w)
				}
			}
			if d := time.Since(start); d > 15*time.Second { // bounded, even on a loaded machine
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestChecksum(t *testing.T) {
	opts := hostOpts(t)
	path := filepath.Join(opts.GraphDir, "crashy")
	sum, err := host.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	ref := opts.Plugins["crashy"]
	ref.SHA256 = sum
	opts.Plugins["crashy"] = ref
	h := newHost(t, opts)
	ctx := ctxT(t, 30*time.Second)
	if _, err := h.Describe(ctx, "crashy"); err != nil {
		t.Fatalf("pinned, unchanged: %v", err)
	}
	h.Close()

	// The binary changes after pinning: refused, with both hashes.
	b, _ := os.ReadFile(path)
	writeScript(t, path, string(b)+"# tampered\n")
	newSum, _ := host.FileSHA256(path)
	h = newHost(t, opts)
	_, err = h.Describe(ctx, "crashy")
	if !errors.Is(err, host.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	for _, w := range []string{`plugin "crashy"`, path, "expected sha256 " + sum, "actual " + newSum} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, lacks %q", err, w)
		}
	}

	ref.SHA256 = "abc"
	opts.Plugins["crashy"] = ref
	h = newHost(t, opts)
	if _, err = h.Describe(ctx, "crashy"); !errors.Is(err, host.ErrChecksum) || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("bad pin: err = %v", err)
	}
}

func TestConcurrentFirstUseStartsOnce(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 30*time.Second)
	pids := make(chan string, 8)
	for range 8 {
		go func() {
			res, err := h.Restore(ctx, req("crashy", "n", map[string]any{"do": "ok"}), nil)
			if err != nil {
				t.Error(err)
			}
			pids <- res.Outputs["pid"]
		}()
	}
	first := <-pids
	for range 7 {
		if p := <-pids; p != first {
			t.Errorf("pids %s and %s: want one process", first, p)
		}
	}
}

func TestStartAhead(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 30*time.Second)
	if err := h.Start(ctx, "noop", "exec", "crashy"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Before any call, the plugin process runs: a child of this test with
	// the crashy plugin's environment.
	if !hasChildWithEnv(envTestPlugin + "=crashy") {
		t.Error("no crashy plugin process after Start")
	}
	err := h.Start(ctx, "noop", "missing-vendor")
	if !errors.Is(err, host.ErrUndeclared) || !strings.Contains(err.Error(), `start plugin "missing-vendor"`) {
		t.Errorf("Start with an undeclared plugin: err = %v", err)
	}
}

// hasChildWithEnv reports whether a child process of this one has kv in
// its environment (Linux /proc).
func hasChildWithEnv(kv string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		for _, v := range strings.Split(string(env), "\x00") {
			if v == kv {
				return true
			}
		}
	}
	return false
}

// TestReadyCancelledStartsNothing: a caller whose context is done before
// it asks for a plugin (an agent stopping while it warms a graph's
// plugins) starts no process, and gets its context's error.
func TestReadyCancelledStartsNothing(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Ready(ctx, "noop"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ready with a cancelled context: %v, want context.Canceled", err)
	}
	if n := host.Started(h); n != 0 {
		t.Fatalf("%d plugin processes started for a cancelled caller", n)
	}
	if err := h.Ready(context.Background(), "noop"); err != nil {
		t.Fatalf("Ready afterwards: %v", err)
	}
	if n := host.Started(h); n != 1 {
		t.Fatalf("%d plugin processes after Ready, want 1", n)
	}
}
