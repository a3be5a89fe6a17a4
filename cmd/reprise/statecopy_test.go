package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIStateCopy moves a parked run from a state file to etcd, finishes
// it there, and moves it back to a new file: log --verify passes on every
// side with the same head, an existing run is never overwritten, and a
// live run is refused.
func TestCLIStateCopy(t *testing.T) {
	t.Parallel() // waits on etcd members and leases more than it works
	c := sharedEtcd(t)
	url := c.URL("copy/reprise")
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	d.mustRun(exitParked, "run", g)
	s := d.status()
	file := d.path("reprise.db")
	verify := func(state string) string {
		t.Helper()
		out := d.mustRun(0, "log", "--state", state, s.Run, "--verify")
		if !strings.Contains(out, "intact") {
			t.Fatalf("log --verify --state %s: %s", state, out)
		}
		return out
	}
	head := func(state string) string {
		t.Helper()
		out := d.mustRun(0, "report", "--state", state, s.Run, "--json")
		var r struct {
			Journal struct {
				Head string `json:"head"`
			} `json:"journal"`
		}
		if err := jsonUnmarshal(out, &r); err != nil || r.Journal.Head == "" {
			t.Fatalf("report --json --state %s: %v\n%s", state, err, tail(out, 500))
		}
		return r.Journal.Head
	}
	out := d.mustRun(0, "state", "copy", "--from", file, "--to", url)
	if !strings.Contains(out, "copied run "+s.Run) {
		t.Errorf("state copy: %s", out)
	}
	verify(file)
	verify(url)
	if a, b := head(file), head(url); a != b {
		t.Errorf("heads differ: file %s, etcd %s", a, b)
	}
	// Again: refused, nothing overwritten.
	_, errs, code := d.run("state", "copy", "--from", file, "--to", url, s.Run)
	if code != exitError || !strings.Contains(errs, "already in") {
		t.Errorf("copy over an existing run: exit %d\n%s", code, errs)
	}
	// The rebuild goes on on the cluster.
	d.mustRun(0, "approve", "--state", url, s.Run, "lab-reentry", "--by", "alice")
	d.mustRun(0, "resume", "--state", url, s.Run)
	if st := d.status("--state", url, s.Run); st.Status != "succeeded" {
		t.Fatalf("on etcd after resume: %+v", st)
	}
	// And back to a new file.
	back := d.path("back.db")
	d.mustRun(0, "state", "copy", "--from", url, "--to", back, s.Run)
	verify(back)
	if a, b := head(url), head(back); a != b {
		t.Errorf("heads differ: etcd %s, back %s", a, b)
	}
	if st := d.status("--state", back, s.Run); st.Status != "succeeded" || st.Done != 4 {
		t.Errorf("copied back: %+v", st)
	}
	if done := readFile(t, d.path("done.txt")); done != "ad\nlab-report\n" {
		t.Errorf("steps ran: %q", done)
	}

	// A live run (a process holds the file) is refused.
	d2 := newCLIDir(t)
	g2 := d2.write("graph.yaml", gatesGraph)
	cmd := d2.command("run", "--wait", "-q", g2)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, code := d2.run("status", "--json")
		if code == 0 && strings.Contains(out, `"waiting"`) && strings.Contains(out, "lab-reentry") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never waited at its gate: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, errs, code = d2.run("state", "copy", "--from", d2.path("reprise.db"), "--to", c.URL("copy/live"))
	if code != exitError || !strings.Contains(errs, "live run is not copied") {
		t.Errorf("copy of a live run: exit %d\n%s", code, errs)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	_ = os.Remove(d2.path("reprise.db.sock"))
}
