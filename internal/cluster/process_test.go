package cluster_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/buildtest"
	"github.com/reprise-si/reprise/internal/cluster"
	"github.com/reprise-si/reprise/internal/etcdtest"
)

// proc is a reprise process started by a test.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.out.Write(b) }

func (p *proc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

func reprise(t testing.TB, args ...string) *proc {
	t.Helper()
	if testing.Short() {
		t.Skip("real reprise processes are not run with -short")
	}
	if buildErr != nil {
		t.Skipf("bin/reprise not built: %v", buildErr)
	}
	root, err := buildtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(filepath.Join(root, "bin", "reprise"), args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.Dir = t.TempDir() // logs of an etcd state go to the working directory
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait(t testing.TB, limit time.Duration) (code int) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("%v did not end within %s:\n%s", p.cmd.Args, limit, p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestAgentProcessKilled runs agents as real `reprise agent` processes: the
// one running a step is SIGKILLed after the step did its work; its lease
// expires, the coordinator journals the step left running by the lost
// agent and gives it to the other agent, whose Check finds it restored: no
// completed step runs twice (every invocation is counted). A second agent
// process with a name in use is refused (exit 2) naming the live one; an
// agent of a zone with no nodes idles.
func TestAgentProcessKilled(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url := c.URL("procs")
	k := cluster.NewKeys("procs")
	dir := t.TempDir()
	g := mustGraph(t, dir, `version: 1
name: killed
zones:
  - {id: core, title: Core}
nodes:
  - id: long
    kind: application
    plugin: exec
    zone: core
    with:
      restore: [sh, -c, 'echo long >> runs.txt; touch long.done; sleep 20']
      check: [sh, -c, 'test -f long.done']
  - {id: a, kind: application, plugin: exec, zone: core, depends_on: [long], with: {restore: [sh, -c, 'echo a >> runs.txt']}}
  - {id: b, kind: application, plugin: exec, zone: core, depends_on: [long], with: {restore: [sh, -c, 'echo b >> runs.txt']}}
`)
	victim := reprise(t, "agent", "--state", url, "--zone", "core", "--name", "victim", "--slots", "1", "--ttl", "2s")
	waitFor(t, 60*time.Second, "agent victim registered", func() bool { return strings.Contains(victim.output(), "agent registered") })
	idle := reprise(t, "agent", "--state", url, "--zone", "admin", "--name", "idle", "--ttl", "2s")
	dup := reprise(t, "agent", "--state", url, "--zone", "core", "--name", "victim", "--ttl", "2s")
	if code := dup.wait(t, 60*time.Second); code != 2 || !strings.Contains(dup.output(), `agent "victim" is already registered (zone "core"`) {
		t.Errorf("second agent named victim: exit %d, want 2 naming the live one:\n%s", code, dup.output())
	}

	co := startCoordinator(t, c, k, dir, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	done := co.startRun(ctx, g)
	waitFor(t, 90*time.Second, "the victim ran long", func() bool {
		_, err := os.Stat(filepath.Join(dir, "long.done"))
		return err == nil
	})
	heir := reprise(t, "agent", "--state", url, "--zone", "core", "--name", "heir", "--slots", "2", "--ttl", "2s")
	waitFor(t, 60*time.Second, "agent heir registered", func() bool { return strings.Contains(heir.output(), "agent registered") })
	victim.cmd.Process.Signal(syscall.SIGKILL)
	var o runOut
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatalf("run did not finish; heir:\n%s", heir.output())
	}
	if o.err != nil || o.st != state.RunSucceeded {
		recs, _ := co.st.Nodes(o.runID)
		t.Fatalf("run: %s %v; nodes %+v\nheir:\n%s", o.st, o.err, recs, heir.output())
	}
	if got := counts(t, filepath.Join(dir, "runs.txt")); got["long"] != 1 || got["a"] != 1 || got["b"] != 1 {
		t.Errorf("invocations %v, want each step once", got)
	}
	lost := journalOf(t, co.st, o.runID, cluster.EntryAgentLost)
	if len(lost) != 1 || lost[0].NodeID != "long" || !strings.Contains(lost[0].Message, "left running by lost agent victim") {
		t.Errorf("agent-lost entries %+v", lost)
	}
	if !strings.Contains(heir.output(), `"check_first":true`) || !strings.Contains(heir.output(), `"lost_agent":"victim"`) {
		t.Errorf("the heir did not take long with Check first:\n%s", heir.output())
	}
	if strings.Contains(idle.output(), "step claimed") || !strings.Contains(idle.output(), "idle") {
		t.Errorf("the admin agent did not idle:\n%s", idle.output())
	}
	// SIGTERM: a clean stop, the name given back.
	heir.cmd.Process.Signal(syscall.SIGTERM)
	if code := heir.wait(t, 60*time.Second); code != 0 || !strings.Contains(heir.output(), "agent stopped") {
		t.Errorf("heir after SIGTERM: exit %d:\n%s", code, heir.output())
	}
	resp, err := c.Client(t).Get(ctx, k.Agent("heir"))
	if err != nil || resp.Count != 0 {
		t.Errorf("heir's registration after its clean stop: %v %v", resp, err)
	}
}
