package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/hosttest"
	"github.com/reprise-si/reprise/plugins/sdk"
)

// envTestPlugin makes the test binary serve one of the test plugins below.
const envTestPlugin = "REPRISE_TEST_PLUGIN"

func TestMain(m *testing.M) {
	hosttest.MaybeServe()
	if name := os.Getenv(envTestPlugin); name != "" {
		serveTestPlugin(name)
		os.Exit(0)
	}
	if sock := os.Getenv(envEcho); sock != "" {
		serveEcho(sock)
		os.Exit(0)
	}
	if bin := os.Getenv(envMiniHostRaw); bin != "" {
		runRawMiniHost(bin)
		os.Exit(0)
	}
	if pidfile := os.Getenv(envMiniHost); pidfile != "" {
		runMiniHost(pidfile)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hostOpts declares the test plugins (crashy, slowstart, badcookie, silent, legacy, brokensession, rawpoints)
// as vendor plugins: each is a shell script in a temporary folder that
// re-runs the test binary as that plugin. GraphDir is that folder.
func hostOpts(t testing.TB) host.Options {
	t.Helper()
	dir := t.TempDir()
	plugins := map[string]graphs.PluginRef{}
	for _, name := range []string{"crashy", "slowstart", "badcookie", "silent", "legacy", "brokensession", "rawpoints"} {
		writeScript(t, filepath.Join(dir, name), fmt.Sprintf("#!/bin/sh\n%s=%s exec %q -test.run='^$'\n", envTestPlugin, name, os.Args[0]))
		plugins[name] = graphs.PluginRef{Path: name}
	}
	return host.Options{Plugins: plugins, GraphDir: dir}
}

func writeScript(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// newHost returns a host serving the built-ins from the test binary; it is
// closed when the test ends.
func newHost(t *testing.T, opts host.Options) *host.Host {
	t.Helper()
	if opts.BuiltinCommand == nil {
		opts.BuiltinCommand = hosttest.BuiltinCommand
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	h := host.New(opts)
	t.Cleanup(func() { h.Close() })
	return h
}

// observed returns a zap logger whose entries the test can read.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func req(plugin, node string, with map[string]any) step.Request {
	return step.Request{RunID: "run-1", NodeID: node, Kind: graphs.KindApplication, Plugin: plugin,
		Attempt: 1, Config: with, Mode: step.ModeNormal}
}

var _ sdk.Plugin = crashPlugin{}
