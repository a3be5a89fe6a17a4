package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const crisisCLIGraph = `version: 1
name: crisis
defaults: {approvals: {vital: 2}, rto: {vital: 1s}}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, rto: 720h, owner: "IT lead", contact: "+33 1 00 00 00 00"}
  - {id: lab-gate, kind: data, plugin: manual, depends_on: [ad], owner: "Lab manager", runbook: "https://wiki/lab", with: {message: "<script>alert(1)</script>"}}
  - {id: lab, kind: application, plugin: noop, criticality: vital, depends_on: [lab-gate]}
`

// TestCLIFourEyesAndDeadlines: a vital gate needs two distinct approvers
// (the graph's default); the CLI says so after the first, refuses the same
// name twice, opens with the second; status shows the gate's approvals,
// deadlines (late: the vital rto is 1s) and who to call.
func TestCLIFourEyesAndDeadlines(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	d.write("g.yaml", crisisCLIGraph)
	d.mustRun(4, "run", "g.yaml")
	runID := d.status().Run
	time.Sleep(1100 * time.Millisecond) // the vital rto (1s) passes: lab-gate and lab are late
	out := d.mustRun(0, "approve", runID, "lab-gate", "--by", "alice", "--comment", "samples checked")
	if !strings.Contains(out, "gate lab-gate still waits: approved so far by alice; it needs another, distinct approver") {
		t.Fatalf("first approval:\n%s", out)
	}
	_, stderr, code := d.run("approve", runID, "lab-gate", "--by", "ALICE")
	if code != 1 || !strings.Contains(stderr, "ALICE already approved this gate (1 of 2 approvals so far: alice)") {
		t.Fatalf("same approver twice: exit %d\n%s", code, stderr)
	}
	st := d.mustRun(0, "status", runID)
	for _, want := range []string{"gate lab-gate needs 2 distinct approvers: 1 given (alice)", "deadlines (from ",
		"late     lab-gate", "who to call:", "owner Lab manager · runbook https://wiki/lab"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	var js struct {
		Deadlines []struct {
			Node, Status string
		} `json:"deadlines"`
		Gates []struct {
			Node      string `json:"node"`
			Needed    int    `json:"needed"`
			Approvers []struct{ By string }
			Owner     string `json:"owner"`
		} `json:"gates"`
		Contacts map[string]struct{ Owner, Contact string } `json:"contacts"`
	}
	raw := d.mustRun(0, "status", "--json", runID)
	if err := json.Unmarshal([]byte(raw), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Gates) != 1 || js.Gates[0].Needed != 2 || len(js.Gates[0].Approvers) != 1 || js.Gates[0].Owner != "Lab manager" {
		t.Errorf("gates: %+v", js.Gates)
	}
	byNode := map[string]string{}
	for _, dl := range js.Deadlines {
		byNode[dl.Node] = dl.Status
	}
	if byNode["ad"] != "met" || byNode["lab"] != "late" || byNode["lab-gate"] != "late" {
		t.Errorf("deadlines: %v", byNode)
	}
	if js.Contacts["ad"].Contact != "+33 1 00 00 00 00" {
		t.Errorf("contacts: %+v", js.Contacts)
	}
	out = d.mustRun(0, "approve", runID, "lab-gate", "--by", "bob")
	if !strings.Contains(out, "node lab-gate of run "+runID+" approved by bob") {
		t.Fatalf("second approval:\n%s", out)
	}
	d.mustRun(0, "resume", runID)
	logOut := d.mustRun(0, "log", runID, "--node", "lab-gate")
	if !strings.Contains(logOut, "alice") || !strings.Contains(logOut, "bob") {
		t.Errorf("log of the gate lacks an approver:\n%s", logOut)
	}
}
