package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// killStep is the step of every killGraph node: it takes a token (removes
// one file of tokens/; the removal that succeeds owns it), waiting until
// there is one or the file free exists, then appends its id to
// appended.txt. The tokens let a test bound what a run does before a kill:
// with fewer tokens than nodes left to run, the run cannot finish.
const killStep = `got() { for f in tokens/*; do rm "$f" 2>/dev/null && return 0; done; return 1; }
until [ -e free ] || got; do sleep 0.05; done
sleep 0.01
echo "$1" >> appended.txt
`

// killGraph is a generated graph of n exec nodes in layers, each running
// killStep (step.sh) with its id; check says restored when the id is in
// appended.txt.
func killGraph(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("version: 1\nname: kill\ndefaults: {retries: 0}\nnodes:\n")
	for k := 0; k < n; k++ {
		id := fmt.Sprintf("n%03d", k)
		fmt.Fprintf(&b, "  - id: %s\n    kind: infrastructure\n    plugin: exec\n", id)
		fmt.Fprintf(&b, "    with: {restore: [sh, step.sh, %s], check: [grep, -qx, %s, appended.txt]}\n", id, id)
		if k >= 10 {
			deps := map[int]bool{}
			for j := 0; j < 2; j++ {
				deps[r.IntN(k)] = true
			}
			b.WriteString("    depends_on: [")
			sep := ""
			for dep := range deps {
				fmt.Fprintf(&b, "%sn%03d", sep, dep)
				sep = ", "
			}
			b.WriteString("]\n")
		}
	}
	return b.String()
}

// giveTokens removes the tokens left in tokens/ and puts n new ones there,
// named after the cycle so that no late step of an earlier cycle can take
// one by a name it listed then.
func giveTokens(t *testing.T, d *cliDir, cycle, n int) {
	t.Helper()
	if err := os.RemoveAll(d.path("tokens")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d.path("tokens"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		d.write(fmt.Sprintf("tokens/c%d.%d", cycle, i), "")
	}
}

// appendLines returns the lines of appended.txt.
func appendLines(d *cliDir) []string {
	data, _ := os.ReadFile(d.path("appended.txt"))
	return strings.Fields(string(data))
}

// appendCounts counts how many times each id was appended.
func appendCounts(t *testing.T, d *cliDir) map[string]int {
	counts := map[string]int{}
	for _, id := range appendLines(d) {
		counts[id]++
	}
	return counts
}

func readFileIfAny(path string) ([]byte, error) { return os.ReadFile(path) }

// succeededNodes reads the state file (the engine is dead) and returns the
// nodes recorded succeeded.
func succeededNodes(t *testing.T, d *cliDir) (map[string]bool, string) {
	t.Helper()
	if _, err := os.Stat(d.path("reprise.db")); err != nil {
		return map[string]bool{}, ""
	}
	st, err := state.Open(d.path("reprise.db"), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs()
	if err != nil || len(runs) == 0 {
		return map[string]bool{}, ""
	}
	recs, err := st.Nodes(runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]bool{}
	for _, r := range recs {
		if r.State == state.NodeSucceeded {
			ok[r.ID] = true
		}
	}
	return ok, runs[0].ID
}

// TestCLISigkillResume kills the engine with SIGKILL at random moments of a
// 300-node run, 20 times, resuming each time (plugin processes die with it,
// as in a power cut). At the end every node has succeeded, no node whose
// success was recorded before a kill ran again, and the journal verifies.
//
// Each cycle gives the steps fewer tokens (see killStep) than nodes are
// left to run, so every kill lands on a running engine however slow or
// fast the machine is: the run cannot finish before its kill, and a kill
// that waits for some steps to have run waits for no clock.
func TestCLISigkillResume(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills and resumes a 300-node run 20 times")
	}
	const nodes, kills = 300, 20
	d := newCLIDir(t)
	g := d.write("graph.yaml", killGraph(nodes, 7))
	d.write("step.sh", killStep)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	countAtSuccess := map[string]int{} // node → appends when its success was first seen recorded
	midRun := 0
	runID := ""
	for k := 0; k < kills; k++ {
		// Kill a quarter of the time blindly, after a random delay (often
		// during start-up or resume's checks); otherwise once 1 to 20 steps
		// have run in this cycle, plus a random delay. Tokens for 10 steps
		// more than that keep steps ending as the kill lands, but fewer
		// than the nodes not yet appended: at least one node cannot run
		// its step in this cycle, so the run cannot finish before its kill.
		missing := nodes - len(appendCounts(t, d))
		blind := r.IntN(4) == 0
		blindDelay := time.Duration(r.IntN(400)) * time.Millisecond
		steps := 1 + r.IntN(20)
		tokens := max(0, min(steps+10, missing-1))
		if steps > tokens {
			blind = true // too few nodes left to wait for steps
		}
		giveTokens(t, d, k, tokens)
		delay := time.Duration(r.IntN(30)) * time.Millisecond

		args := []string{"resume", "-q"}
		if runID == "" { // killed before the run was recorded: start again
			args = []string{"run", "-q", g}
		}
		before := len(appendLines(d))
		cmd := d.command(args...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killAt := make(chan bool, 1) // true: the steps never came
		stop := make(chan struct{})
		go func() {
			if blind {
				select {
				case <-time.After(blindDelay):
				case <-stop:
				}
				killAt <- false
				return
			}
			// Generous: only an engine that stopped running steps takes this long.
			deadline := time.Now().Add(2 * time.Minute)
			for len(appendLines(d)) < before+steps {
				if time.Now().After(deadline) {
					killAt <- true
					return
				}
				select {
				case <-time.After(5 * time.Millisecond):
				case <-stop:
					killAt <- false
					return
				}
			}
			time.Sleep(delay)
			killAt <- false
		}()
		select {
		case err := <-exited:
			// The tokens leave a step it cannot run: the run cannot have
			// finished, whatever the exit.
			close(stop)
			<-killAt
			t.Fatalf("cycle %d: reprise %v ended by itself before the kill (%v), with %d tokens for %d nodes not run\n%s",
				k, args, err, tokens, missing, tail(errb.String(), 2000))

		case stuck := <-killAt:
			close(stop)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err := <-exited
			if stuck {
				t.Fatalf("cycle %d: reprise %v ran %d of its %d steps in 2 minutes\n%s",
					k, args, len(appendLines(d))-before, steps, tail(errb.String(), 2000))
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
				t.Fatalf("cycle %d: reprise %v ended by itself as it was killed (%v)\n%s", k, args, err, tail(errb.String(), 2000))
			}
			midRun++
		}
		// Kill the plugin processes (and their steps) until none is left:
		// one can start a step between a scan and its own death.
		for tries := 0; d.killTagged() > 0; tries++ {
			if tries == 10000 {
				t.Fatalf("cycle %d: processes of the test outlive SIGKILL", k)
			}
			time.Sleep(time.Millisecond)
		}
		var ok map[string]bool
		ok, runID = succeededNodes(t, d)
		counts := appendCounts(t, d)
		for id := range ok {
			if _, seen := countAtSuccess[id]; !seen {
				countAtSuccess[id] = counts[id]
			}
		}
	}
	// The last resume runs without tokens.
	d.write("free", "")
	d.mustRun(0, "resume", "-q")
	ok, runID := succeededNodes(t, d)
	if len(ok) != nodes {
		t.Fatalf("%d/%d nodes succeeded", len(ok), nodes)
	}
	counts := appendCounts(t, d)
	for id, c := range countAtSuccess {
		if counts[id] != c {
			t.Errorf("node %s ran again after its success was recorded: %d appends then, %d now", id, c, counts[id])
		}
	}
	for k := 0; k < nodes; k++ {
		if id := fmt.Sprintf("n%03d", k); counts[id] == 0 {
			t.Errorf("node %s succeeded without running", id)
		}
	}
	d.mustRun(0, "log", runID, "--verify")
	if midRun != kills || len(countAtSuccess) < nodes/3 {
		t.Errorf("%d of %d kills hit a running engine, %d successes seen before a kill: the test did not exercise crashes", midRun, kills, len(countAtSuccess))
	}
	restoredByCheck := strings.Count(d.mustRun(0, "log", runID), " restored ")
	t.Logf("%d kills mid-run, %d nodes seen succeeded before a kill, %d found restored by Check on resume", midRun, len(countAtSuccess), restoredByCheck)
}

// TestCLIPluginCrash: a plugin process that dies mid-run fails only the
// nodes it had in flight; the other plugin's nodes go on, and resume
// finishes the failed ones. The crasher kills its plugin once slow1 has
// started (not after a fixed delay, which a loaded machine can outlast
// before slow1 starts).
func TestCLIPluginCrash(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: crash
defaults: {retries: 0}
nodes:
  - {id: crasher, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'if mkdir crashed.d 2>/dev/null; then i=0; while [ ! -d crashed.d2 ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; kill -9 $PPID; sleep 5; fi']}}
  - {id: slow1, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'test -d crashed.d2 || { mkdir crashed.d2; sleep 3; }']}}
  - {id: quiet1, kind: infrastructure, plugin: noop}
  - {id: quiet2, kind: application, plugin: noop, depends_on: [quiet1]}
  - {id: after, kind: application, plugin: exec, depends_on: [crasher], with: {restore: ["true"]}}
`)
	d.mustRun(exitFailedNodes, "run", g)
	s := d.status()
	states := map[string]string{}
	for _, n := range s.Nodes {
		states[n.ID] = n.State
	}
	want := map[string]string{"crasher": "failed", "slow1": "failed", "quiet1": "succeeded", "quiet2": "succeeded", "after": "blocked"}
	for id, w := range want {
		if states[id] != w {
			t.Errorf("node %s: %s, want %s", id, states[id], w)
		}
	}
	d.mustRun(0, "resume")
	if s := d.status(); s.Status != "succeeded" {
		t.Errorf("after resume: %s", s.Status)
	}
}

// TestCLIInterrupt sends SIGINT once (running steps finish) and twice
// (running steps are cancelled): exit 130 and a consistent state.
func TestCLIInterrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sig     syscall.Signal
		signals int
		want    string // state of the slow nodes afterwards
		sleep   string // how long each slow step runs
	}{
		{"once", syscall.SIGINT, 1, "succeeded", "2"},
		// The steps would run 60 s: ending as pending within seconds proves they were cancelled.
		{"twice", syscall.SIGINT, 2, "pending", "60"},
		// A closed terminal (SIGHUP) stops as gracefully as SIGTERM.
		{"hangup", syscall.SIGHUP, 1, "succeeded", "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newCLIDir(t)
			g := d.write("graph.yaml", `version: 1
name: int
nodes:
  - {id: slow1, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'echo started >> started.txt; sleep `+tc.sleep+`']}}
  - {id: slow2, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'echo started >> started.txt; sleep `+tc.sleep+`']}}
  - {id: next, kind: application, plugin: noop, depends_on: [slow1, slow2]}
`)
			cmd := d.command("run", g)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Generous: on a loaded 2-core machine two shells under -race can take long to start.
			deadline := time.Now().Add(60 * time.Second)
			for {
				data, _ := readFileIfAny(d.path("started.txt"))
				if bytes.Count(data, []byte("started")) == 2 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					_ = cmd.Wait() // the copy into errb ends before it is read
					t.Fatalf("steps never started\n%s", errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			began := time.Now()
			for k := 0; k < tc.signals; k++ {
				_ = cmd.Process.Signal(tc.sig)
				time.Sleep(100 * time.Millisecond)
			}
			err := cmd.Wait()
			took := time.Since(began)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
				t.Fatalf("exit: %v, want %d\n%s", err, exitInterrupted, tail(errb.String(), 2000))
			}
			// Far below the steps' 60 s, with room for a loaded machine.
			if tc.signals == 2 && took > 15*time.Second {
				t.Errorf("second SIGINT took %s to stop the run: running steps were not cancelled", took)
			}
			s := d.status()
			if s.Status != "interrupted" {
				t.Errorf("status %s, want interrupted", s.Status)
			}
			for _, n := range s.Nodes {
				want := tc.want
				if n.ID == "next" {
					want = "pending"
				}
				if n.State != want {
					t.Errorf("node %s: %s, want %s", n.ID, n.State, want)
				}
			}
			d.mustRun(0, "resume")
		})
	}
}

// TestCLIStatusAndApproveWhileRunning reads a run in progress from another
// process (through the control socket) and approves its gate there.
func TestCLIStatusAndApproveWhileRunning(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	cmd := d.command("run", "--wait", g)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var s statusJSON
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, code := d.run("status", "--json")
		if code == 0 && strings.Contains(out, `"waiting": [`) && !strings.Contains(out, `"waiting": []`) {
			if err := jsonUnmarshal(out, &s); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate never seen waiting; last status (exit %d):\n%s\nengine:\n%s", code, out, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !s.Live || s.Status != "running" {
		t.Errorf("status of a live run: live %v status %s", s.Live, s.Status)
	}
	if out := d.mustRun(0, "runs"); !strings.Contains(out, "in progress") {
		t.Errorf("runs:\n%s", out)
	}
	if out := d.mustRun(0, "log", s.Run); !strings.Contains(out, "waiting") {
		t.Errorf("log through the socket:\n%s", out)
	}
	d.mustRun(0, "log", s.Run, "--verify")
	d.mustRun(0, "approve", s.Run, "lab-reentry", "--by", "bob", "--comment", "from the other terminal")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run --wait after approval: %v\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run --wait did not finish after the approval")
	}
	if s := d.status(s.Run); s.Status != "succeeded" {
		t.Errorf("final status %s", s.Status)
	}
}

// TestCLIMarkRetryEditedGraph: an operator marks a failed node done, retries
// a node with its downstream, and resumes with an edited graph.
func TestCLIMarkRetryEditedGraph(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	src := `version: 1
name: ops
defaults: {retries: 0}
nodes:
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> ran.txt; exit 1']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
  - {id: app, kind: application, plugin: exec, depends_on: [db], with: {restore: [sh, -c, 'echo app >> ran.txt']}}
`
	g := d.write("graph.yaml", src)
	d.mustRun(exitFailedNodes, "run", g)
	run := d.status().Run
	d.mustRun(exitUsage, "mark", run, "tape", "--reason", "x")
	d.mustRun(exitUsage, "mark", run, "tape", "--done")
	d.mustRun(0, "mark", run, "tape", "--done", "--reason", "restored by hand from the offsite tape", "--by", "carol")
	var res struct {
		Run    string         `json:"run"`
		Status string         `json:"status"`
		Counts map[string]int `json:"counts"`
		Total  int            `json:"total"`
	}
	if err := jsonUnmarshal(d.mustRun(0, "resume", run, "--json"), &res); err != nil {
		t.Fatal(err)
	}
	if res.Run != run || res.Status != "succeeded" || res.Total != 3 || res.Counts["succeeded"] != 3 {
		t.Errorf("resume --json: %+v", res)
	}
	d.mustRun(0, "retry", run, "db", "--downstream", "--by", "dave")
	if got := readFile(t, d.path("ran.txt")); got != "tape\ndb\napp\ndb\napp\n" {
		t.Errorf("steps ran:\n%s", got)
	}
	logOut := d.mustRun(0, "log", run)
	for _, want := range []string{"marked", "by carol", "restored by hand", "db by dave: retry requested", "app by dave"} {
		if !strings.Contains(logOut, want) {
			t.Errorf("journal lacks %q:\n%s", want, logOut)
		}
	}
	edited := strings.Replace(src, "echo app >> ran.txt", "echo app2 >> ran.txt", 1)
	edited += "  - {id: report, kind: data, plugin: exec, depends_on: [app], with: {restore: [sh, -c, 'echo report >> ran.txt']}}\n"
	edited = strings.Replace(edited, "{id: db, kind: application,", "{id: db, kind: application, title: Patient DB, estimate: 2h, criticality: vital, timeout: 1h, retries: 2,", 1)
	editedFile := d.write("edited.yaml", edited)
	before := readFile(t, d.path("ran.txt"))

	// The plan, without changing anything: app (done, step changed) is
	// kept, db (done, metadata only) too, report joins.
	plan := d.mustRun(0, "resume", run, "--graph", editedFile, "--dry-run")
	for _, want := range []string{"added (1):\n  + report: new node", "changed since done, kept (1):\n  ~ app [succeeded]: with changed since done: kept done",
		"metadata only (nothing runs again) (1):\n  = db [succeeded]: title, estimate, criticality, timeout, retries changed", "dry run: nothing was changed"} {
		if !strings.Contains(plan, want) {
			t.Errorf("resume --dry-run lacks %q:\n%s", want, plan)
		}
	}
	var jplan struct {
		Kept  []struct{ ID, State, Reason string } `json:"changed_kept"`
		Added []struct{ ID string }                `json:"added"`
		Rerun []struct{ ID string }                `json:"rerun"`
	}
	if err := jsonUnmarshal(d.mustRun(0, "resume", run, "--graph", editedFile, "--dry-run", "--json"), &jplan); err != nil {
		t.Fatal(err)
	}
	if len(jplan.Kept) != 1 || jplan.Kept[0].ID != "app" || jplan.Kept[0].State != "succeeded" || len(jplan.Added) != 1 || len(jplan.Rerun) != 0 {
		t.Errorf("resume --dry-run --json: %+v", jplan)
	}
	if got := readFile(t, d.path("ran.txt")); got != before {
		t.Errorf("a dry run ran steps:\n%s", got)
	}
	if out := d.mustRun(0, "log", run); strings.Contains(out, "graph-changed") {
		t.Errorf("a dry run journaled the change:\n%s", out)
	}

	out := d.mustRun(0, "resume", run, "--graph", editedFile)
	if !strings.Contains(out, "~ app [succeeded]: with changed since done: kept done") {
		t.Errorf("resume --graph did not print its plan:\n%s", out)
	}
	if got := readFile(t, d.path("ran.txt")); got != before+"report\n" {
		t.Errorf("after the edited graph (only report should run):\n%s", got)
	}
	if out := d.mustRun(0, "log", run); !strings.Contains(out, "graph-changed") || !strings.Contains(out, "added=report") || !strings.Contains(out, "kept=app") {
		t.Errorf("journal lacks the graph change:\n%s", out)
	}

	// --rerun-changed runs the changed done node again, and only it.
	edited = strings.Replace(edited, "echo app2 >> ran.txt", "echo app3 >> ran.txt", 1)
	d.mustRun(0, "resume", run, "--graph", d.write("edited.yaml", edited), "--rerun-changed")
	if got := readFile(t, d.path("ran.txt")); got != before+"report\napp3\n" {
		t.Errorf("after --rerun-changed (only app should run):\n%s", got)
	}
	d.mustRun(0, "log", run, "--verify")
}
