package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/internal/cluster"
)

// agentsJSON is the "agents" part of `status --json` on an etcd state.
type agentsJSON struct {
	Run    string             `json:"run"`
	Status string             `json:"status"`
	Agents *cluster.AgentView `json:"agents"`
}

// zone returns the view's zone z (nil without it).
func (a agentsJSON) zone(z string) *cluster.ZoneAgents {
	if a.Agents == nil {
		return nil
	}
	for i := range a.Agents.Zones {
		if a.Agents.Zones[i].Zone == z {
			return &a.Agents.Zones[i]
		}
	}
	return nil
}

// startAgentProc starts `reprise agent` for zone as a process of the test
// (killed when it ends, with its plugins).
func startAgentProc(t *testing.T, d *cliDir, url, name, zone string, slots int) *exec.Cmd {
	t.Helper()
	cmd := d.command("agent", "--state", url, "--zone", zone, "--name", name, "--slots", fmt.Sprint(slots), "--ttl", "2s")
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("agent %s stderr:\n%s", name, tail(errb.String(), 2000))
		}
	})
	return cmd
}

// TestStatusAgentsEtcd: on a real 3-member cluster, with real agent and
// coordinator processes, `reprise status` says which agents serve the
// run's zone and what they run; once the zone's only agent drains
// (SIGTERM), the step waiting for a slot has no agent, and status says so;
// once it is SIGKILLed, its steps wait and status says so too, naming the
// incompatible agent (protocol 0) that cannot take them and the command
// to start; once that one is gone too, the line the crisis cell reads
// says no agent of this protocol is registered. A new agent then ends the
// run.
func TestStatusAgentsEtcd(t *testing.T) {
	t.Parallel()
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("status-agents-%d", time.Now().UnixNano())
	url := c.URL(prefix)
	d := newCLIDir(t)
	gate := d.path("go")
	step := func(id string) string {
		return fmt.Sprintf(`  - {id: %s, kind: application, plugin: exec, zone: clinical, with: {restore: [sh, -c, "while [ ! -f %s ]; do sleep 0.1; done; echo %s >> %s"]}}
`, id, gate, id, d.path("done.txt"))
	}
	g := d.write("graph.yaml", "version: 1\nname: agents\ndefaults: {retries: 0}\nzones:\n  - {id: clinical, title: Care}\nnodes:\n"+
		step("c1")+step("c2")+step("c3"))

	// An agent of a build from before protocol versions, live under a
	// lease of its own.
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	k := cluster.NewKeys(prefix)
	if _, err := cli.Put(ctx, k.Agent("old-1"), `{"name":"old-1","zone":"clinical","slots":8,"host":"old-host","pid":7}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}

	clin1 := startAgentProc(t, d, url, "clin-1", "clinical", 2)
	run := d.command("run", "-q", "--agents-only", "--ttl", "5s", "--state", url, g)
	var runErr strings.Builder
	run.Stderr = &runErr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- run.Wait() }()
	t.Cleanup(func() { run.Process.Kill() })

	status := func() agentsJSON {
		t.Helper()
		var s agentsJSON
		if err := json.Unmarshal([]byte(d.mustRun(0, "status", "--json", "--state", url)), &s); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		return s
	}
	waitFor := func(what string, ok func(agentsJSON) bool) agentsJSON {
		t.Helper()
		var s agentsJSON
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if s = status(); ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				b, _ := json.MarshalIndent(s.Agents, "", "  ")
				t.Fatalf("%s: never seen; agents of run %s (%s):\n%s\ncoordinator:\n%s", what, s.Run, s.Status, b, tail(runErr.String(), 2000))
			}
		}
	}
	agent := func(z *cluster.ZoneAgents, name string) *cluster.AgentState {
		for i := range z.Agents {
			if z.Agents[i].Name == name {
				return &z.Agents[i]
			}
		}
		return nil
	}

	// clin-1 runs two steps (its slots); the third waits for a slot.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, _, code := d.run("status", "--state", url); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never started:\n%s", tail(runErr.String(), 2000))
		}
	}
	s := waitFor("clin-1 running 2 steps, 1 waiting", func(s agentsJSON) bool {
		z := s.zone("clinical")
		if z == nil || z.Waiting != 1 {
			return false
		}
		a := agent(z, "clin-1")
		return a != nil && a.InFlight == 2
	})
	z := s.zone("clinical")
	if z.Nodes != 3 || z.Ready != 1 || z.Alert != "" || !s.Agents.Work || len(s.Agents.Zones) != 1 {
		t.Errorf("zone clinical with clin-1 live: %+v (work %v, zones %d)", *z, s.Agents.Work, len(s.Agents.Zones))
	}
	if a := agent(z, "clin-1"); a.Slots != 2 || a.Host == "" || a.Incompatible != "" || a.Draining {
		t.Errorf("clin-1: %+v", *a)
	}
	if a := agent(z, "old-1"); a == nil || !strings.Contains(a.Incompatible, "speaks protocol 0") || a.InFlight != 0 {
		t.Errorf("old-1 (protocol 0): %+v", a)
	}
	if cs := s.Agents.Coordinators; len(cs) != 1 || !cs[0].Leads || cs[0].PID != run.Process.Pid {
		t.Errorf("coordinators while the run goes on: %+v, want the run's process (pid %d) leading", cs, run.Process.Pid)
	}
	text := d.mustRun(0, "status", s.Run, "--state", url)
	for _, want := range []string{
		fmt.Sprintf("coordinator: %s:%d (host ", hostname(t), run.Process.Pid),
		"  no standby: if it dies, the run waits for a resume",
		"agents (judged against protocol 1):",
		"  zone clinical: 2 agents, 1 taking steps, 1 step(s) waiting for a free slot (3 nodes)",
		"    clin-1               host ",
		"  slots 2  in flight 2",
		"    old-1                host old-host  slots 8  in flight 0  INCOMPATIBLE: speaks protocol 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status with clin-1 live lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "NO AGENT") {
		t.Errorf("status with clin-1 live says NO AGENT:\n%s", text)
	}

	// SIGTERM: clin-1 drains (finishes what it runs, takes nothing new):
	// the step waiting for a slot has no agent to go to.
	if err := clin1.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s = waitFor("clin-1 draining", func(s agentsJSON) bool {
		z := s.zone("clinical")
		a := agent(z, "clin-1")
		return z != nil && a != nil && a.Draining
	})
	z = s.zone("clinical")
	if a := agent(z, "clin-1"); z.Ready != 0 || z.Waiting != 1 || a.InFlight != 2 ||
		!strings.HasPrefix(z.Alert, "1 step waiting, its agents are stopping (draining: clin-1); old-1 speaks protocol 0") {
		t.Errorf("zone clinical with clin-1 draining: %+v", *z)
	}
	text = d.mustRun(0, "status", s.Run, "--state", url)
	for _, want := range []string{
		"  NO AGENT  zone clinical: 1 step waiting, its agents are stopping (draining: clin-1); old-1 speaks protocol 0",
		"  slots 2  in flight 2  draining (stopping: takes no new step)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status with clin-1 draining lacks %q:\n%s", want, text)
		}
	}

	// SIGKILL: its lease expires, its steps go back, and wait.
	if err := clin1.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s = waitFor("3 steps waiting with no agent", func(s agentsJSON) bool {
		z := s.zone("clinical")
		return z != nil && z.Waiting == 3 && agent(z, "clin-1") == nil
	})
	z = s.zone("clinical")
	if z.Ready != 0 || !strings.HasPrefix(z.Alert, "3 steps waiting, no agent of this protocol registered; old-1 speaks protocol 0") {
		t.Errorf("zone clinical without clin-1: %+v", *z)
	}
	text = d.mustRun(0, "status", s.Run, "--state", url)
	if want := "  NO AGENT  zone clinical: 3 steps waiting, no agent of this protocol registered; old-1 speaks protocol 0 (a build from before protocol versions), this build 1: upgrade it — start `reprise agent --zone clinical` on a machine of the zone\n"; !strings.Contains(text, want) {
		t.Errorf("status without clin-1 lacks\n%s\nin:\n%s", want, text)
	}

	// The old agent goes too: the line the crisis cell reads.
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	text = d.mustRun(0, "status", s.Run, "--state", url)
	if want := "  NO AGENT  zone clinical: 3 steps waiting, no agent of this protocol registered — start `reprise agent --zone clinical` on a machine of the zone\n"; !strings.Contains(text, want) {
		t.Errorf("status without any agent lacks\n%s\nin:\n%s", want, text)
	}

	// The coordinator dies too: nobody leads the run, and status says how
	// it goes on.
	if err := run.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-runDone
	s = waitFor("no coordinator", func(s agentsJSON) bool { return len(s.Agents.Coordinators) == 0 })
	text = d.mustRun(0, "status", s.Run, "--state", url)
	if want := "coordinator: NONE leads graph agents: the run goes on once one takes it (reprise resume " + s.Run; !strings.Contains(text, want) {
		t.Errorf("status without a coordinator lacks\n%s\nin:\n%s", want, text)
	}

	// A new agent and a resume end the run.
	startAgentProc(t, d, url, "clin-2", "clinical", 4)
	d.write("go", "")
	d.mustRun(0, "resume", s.Run, "-q", "--agents-only", "--state", url)
	s = status()
	z = s.zone("clinical")
	if s.Status != "succeeded" || s.Agents.Work || z == nil || z.Waiting != 0 || z.Alert != "" || agent(z, "clin-2") == nil {
		t.Errorf("after the run: %s, agents %+v", s.Status, s.Agents)
	}
}

// TestStatusAgentsNotOnStateFile: on a state file, status has no agents
// section, in text or JSON.
func TestStatusAgentsNotOnStateFile(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", "version: 1\nname: plain\nnodes:\n  - {id: a, kind: application, plugin: noop}\n")
	d.mustRun(0, "run", "-q", g)
	if out := d.mustRun(0, "status"); strings.Contains(out, "agents") {
		t.Errorf("status on a state file speaks of agents:\n%s", out)
	}
	out := d.mustRun(0, "status", "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"agents", "agents_error"} {
		if _, ok := m[k]; ok {
			t.Errorf("status --json on a state file has %q", k)
		}
	}
}

// hostname is this machine's name, as a coordinator names itself.
func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
