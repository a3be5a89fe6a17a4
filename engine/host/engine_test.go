package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// runGraph parses src (in dir) and runs it through a real host and a real
// state file.
func runGraph(t *testing.T, dir, src string) (engine.Result, *state.Store, error) {
	t.Helper()
	path := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := graphs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand, Limits: g.Limits})
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := engine.New(st, h, engine.Options{}).Start(ctx, g)
	return res, st, err
}

// TestRunChecksPinsFirst: a pinned plugin whose binary changed ends the run
// before anything starts, naming plugin, path and both hashes; no run is
// recorded and no node ran.
func TestRunChecksPinsFirst(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	writeScript(t, filepath.Join(dir, "vendor"), fmt.Sprintf("#!/bin/sh\n%s=crashy exec %q -test.run='^$'\n", envTestPlugin, os.Args[0]))
	actual, _ := host.FileSHA256(filepath.Join(dir, "vendor"))
	pinned := strings.Repeat("ab", 32)
	src := fmt.Sprintf(`version: 1
plugins:
  vendor: {path: ./vendor, sha256: %s}
nodes:
  - {id: first, kind: data, plugin: exec, with: {restore: [touch, %q]}}
  - {id: app, kind: application, plugin: vendor, depends_on: [first], with: {do: ok}}
`, pinned, mark)
	_, st, err := runGraph(t, dir, src)
	if !errors.Is(err, host.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	for _, w := range []string{`plugin "vendor"`, filepath.Join(dir, "vendor"), "expected sha256 " + pinned, "actual " + actual} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, lacks %q", err, w)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("node first ran before the pin check")
	}
	if runs, _ := st.Runs(); len(runs) != 0 {
		t.Errorf("%d runs recorded, want none", len(runs))
	}
}

// TestPermanentErrorNotRetried: a plugin that refuses the handshake fails
// its node at once, without the retries and their backoff.
func TestPermanentErrorNotRetried(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "starts")
	writeScript(t, filepath.Join(dir, "liar"), "#!/bin/sh\necho x >> "+count+"\necho 'not a handshake'\n")
	src := `version: 1
plugins:
  liar: {path: ./liar}
defaults: {retries: 3, retry_delay: 20s}
nodes:
  - {id: app, kind: application, plugin: liar}
`
	start := time.Now()
	res, st, err := runGraph(t, dir, src)
	if err != nil && !strings.Contains(err.Error(), "handshake") {
		t.Fatalf("Start: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s: a permanent error must not wait for retries", d)
	}
	if err == nil {
		nodes, _ := st.Nodes(res.RunID)
		if len(nodes) != 1 || nodes[0].State != state.NodeFailed || len(nodes[0].History) != 1 {
			t.Errorf("nodes = %+v, want app failed after one attempt", nodes)
		}
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "x"); n > 2 {
		t.Errorf("the plugin was started %d times, want one start (plus Describe's)", n)
	}
}

// TestStartTimeoutApartFromNodeTimeout: a plugin that takes 2s to start
// runs a node whose timeout is 1s: the start counts against the plugin's
// start_timeout, not the node's timeout.
func TestStartTimeoutApartFromNodeTimeout(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, filepath.Join(dir, "slow"), fmt.Sprintf("#!/bin/sh\nsleep 2\n%s=crashy exec %q -test.run='^$'\n", envTestPlugin, os.Args[0]))
	src := `version: 1
plugins:
  slow: {path: ./slow, start_timeout: 20s}
nodes:
  - {id: app, kind: application, plugin: slow, timeout: 1s, with: {do: ok}}
`
	res, _, err := runGraph(t, dir, src)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("run = %+v, %v; want succeeded", res, err)
	}
}
