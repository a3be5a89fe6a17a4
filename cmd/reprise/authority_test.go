package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLeaderStopsWhenOperatorRevoked: on an etcd state with operators, a
// leading coordinator watches its operator's authority. A leader run by
// operator alice is mid-run (a done, b running until the file go exists);
// alice is revoked: within a few seconds the leader journals
// coordinator-stopped naming alice, cancels b (as a second SIGINT), starts
// nothing new, gives the lead up and exits 130, saying why and what goes
// on with it. status then shows the run interrupted with no coordinator;
// the journal verifies; bob's resume ends the run without running a
// again, each step done once.
func TestLeaderStopsWhenOperatorRevoked(t *testing.T) {
	t.Parallel() // waits on etcd and processes
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("revoke-leader-%d", time.Now().UnixNano())
	url := c.URL(prefix)
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER=", "REPRISE_STATE=" + url}
	base := d.env
	g := d.write("graph.yaml", fmt.Sprintf(takeoverGraph, "revoked"))
	asRoot := func(root string) { d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+root) }

	root := strings.TrimSpace(d.mustRun(0, "operators", "add", "root", "--role", "admin"))
	asRoot(root)
	alice := strings.TrimSpace(d.mustRun(0, "operators", "add", "alice", "--role", "operator"))
	bob := strings.TrimSpace(d.mustRun(0, "operators", "add", "bob", "--role", "operator"))
	d.env = base

	leader, runID := startLeader(t, d, url, g, "2s", []string{"REPRISE_TOKEN=" + alice})
	asRoot(root)
	d.mustRun(0, "operators", "revoke", "alice")
	revoked := time.Now()
	d.env = base
	code := leader.wait(t, 30*time.Second)
	took := time.Since(revoked)
	errs := leader.errb.String()
	t.Logf("the leader stopped %s after alice's revoke returned", took.Round(time.Millisecond))
	if code != exitInterrupted {
		t.Fatalf("the leader whose operator was revoked: exit %d, want %d:\n%s", code, exitInterrupted, tail(errs, 3000))
	}
	if took > 5*time.Second {
		t.Errorf("the leader took %s to stop after its operator was revoked, want at most 5 s", took)
	}
	for _, want := range []string{
		fmt.Sprintf("run %s: operator alice's authority was withdrawn: operator alice was revoked since this coordinator started (no longer among the operators); coordinator ", runID),
		"starts nothing new, cancels its running steps and gives the lead up: the run is left interrupted, every finished step kept",
		fmt.Sprintf("`reprise resume %s` with the token of an operator who may resume (role operator or admin) goes on with it", runID),
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("the stopped leader does not say %q:\n%s", want, tail(errs, 3000))
		}
	}
	if strings.Contains(errs, "rpr_") {
		t.Errorf("the stopped leader printed a token:\n%s", errs)
	}
	status := d.mustRun(0, "status", runID)
	if want := fmt.Sprintf("coordinator: NONE leads graph revoked: the run was stopped, its finished steps kept; it goes on once one takes it (reprise resume %s)", runID); !strings.Contains(status, want) {
		t.Errorf("status after the stop lacks\n%s\nin:\n%s", want, status)
	}
	s := d.status(runID)
	if s.Status != "interrupted" || s.Done != 1 || s.Counts["running"] != 0 {
		t.Errorf("the run after the stop: %s, %d done, counts %v; want interrupted, a done, nothing running", s.Status, s.Done, s.Counts)
	}
	journal := d.mustRun(0, "log", runID)
	l := journalLine(journal, "coordinator-stopped:")
	if !strings.Contains(l, "stopped the run: operator alice's authority was withdrawn (operator alice was revoked since this coordinator started") {
		t.Errorf("the journal's coordinator-stopped: %q\n%s", l, journal)
	}
	if strings.Index(journal, "coordinator-stopped") > strings.Index(journal, "run-interrupted") {
		t.Errorf("coordinator-stopped comes after run-interrupted:\n%s", journal)
	}
	if l := journalLine(journal, "interrupted"); !strings.Contains(l, "b #1: cancelled by interrupt") {
		t.Errorf("b was not cancelled as by a second interrupt: %q\n%s", l, journal)
	}
	if strings.Contains(journal, " c #") {
		t.Errorf("c started after the stop:\n%s", journal)
	}
	d.mustRun(0, "log", runID, "--verify")

	// bob's resume ends it; a, done, does not run again; b and c once.
	d.write("go", "")
	d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+bob)
	d.mustRun(0, "resume", runID, "-q")
	d.env = base
	if s := d.status(runID); s.Status != "succeeded" || s.Done != 3 {
		t.Errorf("after bob's resume: %s, %d done", s.Status, s.Done)
	}
	done := readFile(t, d.path("done.txt"))
	for _, n := range []string{"a", "b", "c"} {
		if k := strings.Count(done, n+"\n"); k != 1 {
			t.Errorf("%s ended %d times, want once: %q", n, k, done)
		}
	}
	journal = d.mustRun(0, "log", runID)
	if l := journalLine(journal, "run-resumed"); !strings.Contains(l, " by bob:") {
		t.Errorf("run-resumed does not say by bob: %q\n%s", l, journal)
	}
	d.mustRun(0, "log", runID, "--verify")
}

// TestResumeLeaderStopsOnNewToken: a resume leads the run too, and its
// operator given a new token (here with a lower role, as `operators add`
// does it) withdraws the old one's authority: the resume stops as a
// revoked leader does (exit 130, coordinator-stopped naming bob, the lead
// given up); an admin's resume ends the run, each step done once.
func TestResumeLeaderStopsOnNewToken(t *testing.T) {
	t.Parallel()
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("revoke-resume-%d", time.Now().UnixNano())
	url := c.URL(prefix)
	d := newCLIDir(t)
	d.env = []string{"REPRISE_TOKEN=", "REPRISE_TOKEN_FILE=", "REPRISE_CLUSTER=", "REPRISE_STATE=" + url}
	base := d.env
	g := d.write("graph.yaml", fmt.Sprintf(takeoverGraph, "newtoken"))
	as := func(token string) { d.env = append(append([]string{}, base...), "REPRISE_TOKEN="+token) }

	root := strings.TrimSpace(d.mustRun(0, "operators", "add", "root", "--role", "admin"))
	as(root)
	alice := strings.TrimSpace(d.mustRun(0, "operators", "add", "alice", "--role", "operator"))
	bob := strings.TrimSpace(d.mustRun(0, "operators", "add", "bob", "--role", "operator"))
	d.env = base

	// alice's run stopped by two SIGINTs (the lead given up), bob's
	// resume leads it.
	leader, runID := startLeader(t, d, url, g, "2s", []string{"REPRISE_TOKEN=" + alice})
	leader.cmd.Process.Signal(os.Interrupt)
	time.Sleep(200 * time.Millisecond)
	leader.cmd.Process.Signal(os.Interrupt)
	if code := leader.wait(t, 30*time.Second); code != exitInterrupted {
		t.Fatalf("alice's run after two SIGINTs: exit %d:\n%s", code, tail(leader.errb.String(), 3000))
	}
	resume := startBG(t, d, []string{"REPRISE_TOKEN=" + bob}, "resume", runID, "-q", "--ttl", "2s", "--state", url)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(d.mustRun(0, "log", runID), "b #2: attempt 2"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("bob's resume never started b again:\n%s", tail(resume.errb.String(), 3000))
		}
	}
	as(root)
	d.mustRun(0, "operators", "add", "bob", "--role", "viewer")
	given := time.Now()
	d.env = base
	code := resume.wait(t, 30*time.Second)
	took := time.Since(given)
	errs := resume.errb.String()
	t.Logf("the resume stopped %s after bob's new token was given", took.Round(time.Millisecond))
	if code != exitInterrupted {
		t.Fatalf("the resume whose operator was given a new token: exit %d, want %d:\n%s", code, exitInterrupted, tail(errs, 3000))
	}
	if took > 5*time.Second {
		t.Errorf("the resume took %s to stop, want at most 5 s", took)
	}
	if want := fmt.Sprintf("run %s: operator bob's authority was withdrawn: operator bob's token was revoked since this coordinator started (bob was given a new one)", runID); !strings.Contains(errs, want) {
		t.Errorf("the stopped resume does not say %q:\n%s", want, tail(errs, 3000))
	}
	journal := d.mustRun(0, "log", runID)
	if l := journalLine(journal, "coordinator-stopped:"); !strings.Contains(l, "operator bob's authority was withdrawn") || !strings.Contains(l, "change=new-token") || !strings.Contains(l, "operator=bob") {
		t.Errorf("the journal's coordinator-stopped: %q\n%s", l, journal)
	}

	// An admin's resume ends it.
	d.write("go", "")
	as(root)
	d.mustRun(0, "resume", runID, "-q")
	d.env = base
	if s := d.status(runID); s.Status != "succeeded" || s.Done != 3 {
		t.Errorf("after root's resume: %s, %d done", s.Status, s.Done)
	}
	done := readFile(t, d.path("done.txt"))
	for _, n := range []string{"a", "b", "c"} {
		if k := strings.Count(done, n+"\n"); k != 1 {
			t.Errorf("%s ended %d times, want once: %q", n, k, done)
		}
	}
	d.mustRun(0, "log", runID, "--verify")
}
