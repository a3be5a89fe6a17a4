package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

// TestCLIEtcdState runs the gates graph with --state etcd://… on a real
// 3-member cluster, each command a fresh process: run parks at the gate,
// status reads it, approve writes the approval, resume finishes it, and
// log --verify, report and runs read it back.
func TestCLIEtcdState(t *testing.T) {
	c := etcdtest.Start(t, 3)
	url := c.URL("cli/reprise")
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	out := d.mustRun(exitParked, "run", "--state", url, g)
	if !strings.Contains(out, "parked") {
		t.Errorf("run output:\n%s", out)
	}
	s := d.status("--state", url)
	if s.Status != "parked" || s.Total != 4 || s.Done != 2 || len(s.Waiting) != 1 {
		t.Fatalf("status after park: %+v", s)
	}
	d.mustRun(0, "approve", "--state", url, s.Run, "lab-reentry", "--by", "alice", "--comment", "forms typed in")
	d.mustRun(0, "resume", "--state", url)
	s = d.status("--state", url, s.Run)
	if s.Status != "succeeded" || s.Done != 4 {
		t.Errorf("status after resume: %+v", s)
	}
	if out := d.mustRun(0, "log", "--state", url, s.Run, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
	if out := d.mustRun(0, "log", "--state", url, s.Run, "--node", "lab-reentry"); !strings.Contains(out, "by alice") {
		t.Errorf("log --node:\n%s", out)
	}
	if out := d.mustRun(0, "report", "--state", url, s.Run); !strings.Contains(out, "lab-report") {
		t.Errorf("report:\n%s", tail(out, 2000))
	}
	if out := d.mustRun(0, "runs", "--state", url); !strings.Contains(out, s.Run) {
		t.Errorf("runs: %s", out)
	}
	if done := readFile(t, d.path("done.txt")); done != "ad\nlab-report\n" {
		t.Errorf("steps ran: %q", done)
	}
}

// TestCLIEtcdUnreachable: no member answers: exit 1 within the dial
// timeout, naming the endpoints.
func TestCLIEtcdUnreachable(t *testing.T) {
	d := newCLIDir(t)
	var eps []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, l.Addr().String())
		l.Close()
	}
	url := "etcd://" + strings.Join(eps, ",") + "/reprise"
	for _, args := range [][]string{{"status"}, {"run", d.write("graph.yaml", gatesGraph)}} {
		start := time.Now()
		_, errs, code := d.run(append(args, "--state", url)...)
		took := time.Since(start)
		if code != exitError || !strings.Contains(errs, eps[0]) || !strings.Contains(errs, eps[1]) || !strings.Contains(errs, "unreachable") {
			t.Errorf("%s with etcd down: exit %d, want 1 naming %v:\n%s", args[0], code, eps, errs)
		}
		if took > 15*time.Second {
			t.Errorf("%s took %s with a 5 s dial timeout", args[0], took)
		}
	}
}

// TestCLIEtcdBadURL: a bad scheme, prefix or endpoint is a usage error.
func TestCLIEtcdBadURL(t *testing.T) {
	d := newCLIDir(t)
	for _, url := range []string{"http://127.0.0.1:2379/reprise", "etcd://127.0.0.1:2379/", "etcd://127.0.0.1:2379", "etcd://127.0.0.1/reprise", "etcd://127.0.0.1:2379/a//b"} {
		for _, cmd := range []string{"status", "runs", "log"} {
			_, errs, code := d.run(cmd, "--state", url)
			if code != exitUsage || !strings.Contains(errs, url) {
				t.Errorf("%s --state %s: exit %d, want 2 naming the URL:\n%s", cmd, url, code, errs)
			}
		}
	}
}
