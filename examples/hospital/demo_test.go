package hospital_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/buildtest"
)

// repoRoot is where `make build` puts bin/ (this file's folder is
// examples/hospital).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// freeBase finds a port base whose HTTP and MLLP ports (base+1..19,
// base+51..69) are free on loopback.
func freeBase(t *testing.T, from int) int {
	t.Helper()
	for base := from; base < 40000; base += 100 { // sim tests use 40000 and up
		var open []net.Listener
		ok := true
		for off := 1; off < 70 && ok; off++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				ok = false
				break
			}
			open = append(open, ln)
		}
		for _, ln := range open {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// runScript runs one of the demo scripts on its own folders and ports,
// bounded in time; on timeout the whole process group is killed (the
// script's trap stops the services it started).
func runScript(t *testing.T, script string, base int, env []string) string {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	limit := 3 * time.Minute
	if script == "demo-cluster.sh" {
		limit = 6 * time.Minute // three etcd members and eight processes on a shared machine
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "examples", "hospital", script))
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HOSPITAL_WORK="+filepath.Join(dir, "work"),
		"HOSPITAL_BACKUPS="+filepath.Join(dir, "backups"),
		fmt.Sprintf("HOSPITAL_PORT_BASE=%d", base))
	cmd.Env = append(cmd.Env, env...)
	// Should the script be killed before its trap runs (timeout), stop the
	// services it started anyway.
	t.Cleanup(func() {
		stop := exec.Command(filepath.Join(root, "bin", "hospital-sim"), "stop")
		stop.Env, stop.Dir = cmd.Env, filepath.Join(root, "examples", "hospital")
		stop.Run()
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s; output:\n%s", script, limit, tailOf(out.String()))
	}
	if err != nil {
		t.Fatalf("%s: %v; output:\n%s", script, err, tailOf(out.String()))
	}
	// Every service must be stopped once the script is over.
	for _, off := range []int{1, 3, 9, 51} {
		addr := fmt.Sprintf("127.0.0.1:%d", base+off)
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("%s: something still listens on %s after the script ended", script, addr)
		}
	}
	return out.String()
}

func tailOf(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// TestMain builds bin/reprise and bin/reprise-plugin-pacs, which the demo
// scripts run, unless the demo is not run (-short).
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		buildErr = buildtest.Build("reprise", "reprise-plugin-pacs", "etcd")
		if buildErr != nil {
			fmt.Fprintf(os.Stderr, "examples/hospital: the demo tests will skip: %v\n", buildErr)
		}
	}
	os.Exit(m.Run())
}

// buildErr is why the binaries could not be built (nil: they are).
var buildErr error

func needBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the demo end to end is not run with -short")
	}
	root := repoRoot(t)
	for _, b := range []string{"bin/reprise", "bin/reprise-plugin-pacs", "bin/etcd"} {
		if _, err := os.Stat(filepath.Join(root, b)); err != nil {
			if buildErr != nil {
				t.Skipf("demo skipped: %s is missing and could not be built: %v", b, buildErr)
			}
			t.Fatalf("%s: built by TestMain, yet %v", b, err)
		}
	}
	if buildErr != nil {
		t.Logf("the binaries in bin/ may be stale: they could not be rebuilt: %v", buildErr)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
}

// TestDemo runs demo.sh end to end: run, each zone certified once rebuilt,
// the biologist's gate approved, the databases' bad restore points rejected
// (encrypted, after the incident, an implant, a web shell), every node
// succeeded, services stopped.
func TestDemo(t *testing.T) {
	needBinaries(t)
	out := runScript(t, "demo.sh", freeBase(t, 23100), nil)
	for _, want := range []string{
		"reprise approve", "lab-validation", "hash chain intact", "110 succeeded", "demo: every node succeeded",
		// Clean recovery: each zone certified in order, the bad restore points rejected.
		"reprise certify", "zone-certified  by Marc Lenoir (RSSI)", "zone=core", "zone=clinical", "zone=administrative", "zone=outside",
		"ris-0820: encrypted: RESTORE-MY-FILES.txt", "pharmacy-db #1: taken after the incident was detected",
		"pharmacy-0820: compromised: Windows/Tasks/svc-update.ps1 (iocs sha256", "dpi-0820: compromised: portal/uploads/img_2231.php (webshells PHP_WebShell_Eval)",
		"ris-db                       ris-0819 (2022-08-19T20:00:00Z, clean)  data lost 27h0m",
		"gam-db                       gam-0820 (2022-08-20T20:00:00Z, clean)  data lost 3h0m",
		"succeeded       evidence-dc01",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q; output:\n%s", want, tailOf(out))
		}
	}
}

// TestDemoResume runs demo-resume.sh: SIGKILL part-way, resume, and the
// ledger proof that no completed step ran twice.
func TestDemoResume(t *testing.T) {
	needBinaries(t)
	out := runScript(t, "demo-resume.sh", freeBase(t, 24100), nil)
	for _, want := range []string{"kill -KILL", "no completed step run twice", "110 succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo-resume output lacks %q; output:\n%s", want, tailOf(out))
		}
	}
}

// TestDemoCluster runs demo-cluster.sh: a 3-member etcd cluster, three
// agents, a leader and a standby coordinator; an agent, the leader and an
// etcd member SIGKILLed part-way; every node succeeded, the journal
// verified, and the ledger proof that no step done before a kill acted again.
func TestDemoCluster(t *testing.T) {
	needBinaries(t)
	etcdBase := freeBase(t, 26100)
	out := runScript(t, "demo-cluster.sh", freeBase(t, etcdBase+100), []string{fmt.Sprintf("ETCD_PORT_BASE=%d", etcdBase+1)})
	for _, want := range []string{
		"SIGKILL agent clinical-1", "takes over", "SIGKILL etcd member m2", "hash chain intact", "110 succeeded",
		"agent kill: ", "leader kill: ", "member kill: ", "none of them acted again", "demo-cluster: every node succeeded",
		// Operators' commands reach the leading coordinator through etcd.
		"certify applied by coordinator", "approve applied by coordinator",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo-cluster output lacks %q; output:\n%s", want, tailOf(out))
		}
	}
	if strings.Contains(out, "RAN AGAIN") {
		t.Errorf("a step done before a kill acted again:\n%s", tailOf(out))
	}
}

// byHandBlock returns the shell block under "### By hand" in README.md.
func byHandBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "### By hand")
	if !ok {
		t.Fatal("README.md has no \"### By hand\" section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no sh block under \"### By hand\"")
	}
	return block
}

// TestReadmeByHand runs the README's "By hand" commands as written, on
// their own work folder, state file and ports (through the environment).
func TestReadmeByHand(t *testing.T) {
	needBinaries(t)
	root := repoRoot(t)
	dir := t.TempDir()
	env := append(os.Environ(),
		"HOSPITAL_WORK="+filepath.Join(dir, "work"),
		"REPRISE_STATE="+filepath.Join(dir, "reprise.db"),
		fmt.Sprintf("HOSPITAL_PORT_BASE=%d", freeBase(t, 25100)))
	t.Cleanup(func() {
		stop := exec.Command(filepath.Join(root, "bin", "hospital-sim"), "stop")
		stop.Env, stop.Dir = env, filepath.Join(root, "examples", "hospital")
		stop.Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The block's run and resumes exit 4 (parked) by design where their
	// comment says so: run it line by line and allow that code there.
	script := "set -uo pipefail\n"
	for _, line := range strings.Split(byHandBlock(t), "\n") {
		cmd, comment, _ := strings.Cut(line, "  #")
		if cmd = strings.TrimSpace(cmd); cmd == "" {
			continue
		}
		want := "0"
		if strings.Contains(comment, "exit 4") {
			want = "4"
		}
		script += fmt.Sprintf("%s\nrc=$?; if [ $rc != %s ]; then echo \"FAILED (exit $rc, want %s): %s\" >&2; exit 1; fi\n",
			cmd, want, want, strings.ReplaceAll(cmd, `"`, `\"`))
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = root, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README commands: %v\n%s", err, tailOf(string(out)))
	}
	if !strings.Contains(string(out), "110/110") {
		t.Errorf("README commands did not end with 110/110 nodes:\n%s", tailOf(string(out)))
	}
}
