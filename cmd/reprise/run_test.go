package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/buildtest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

// envCLI makes the test binary run the reprise command line instead of the
// tests: the end-to-end tests start it as `reprise`, and the plugin host
// re-runs it as `reprise plugin-serve NAME` for the built-in plugins, so
// that every step goes through real plugin processes.
const envCLI = "REPRISE_TEST_CLI"

// envTag marks the processes of one test so that they can be found and
// killed (plugin processes outlive an engine killed with SIGKILL).
const envTag = "REPRISE_TEST_TAG"

func TestMain(m *testing.M) {
	// The plugin host of an in-process command (a test calling run) starts
	// the built-ins as `os.Executable() plugin-serve NAME`: this test
	// binary. It must serve the plugin then, never run the tests again
	// (which would start more plugins, and so on).
	if os.Getenv(envCLI) == "1" || (len(os.Args) > 1 && os.Args[1] == "plugin-serve") {
		os.Exit(run(os.Args[1:]))
	}
	// Each reprise command the tests start, and each plugin it starts,
	// exits without the race detector's one-second sleep.
	hosttest.QuickRaceExit()
	// The hospital graph names its vendor plugin under bin/, where `make
	// build` puts it: build it, so that plain `go test` needs nothing first.
	pacsBuildErr = buildtest.Build("reprise-plugin-pacs")
	code := m.Run()
	stopSharedEtcd()
	os.Exit(code)
}

// pacsBuildErr is why bin/reprise-plugin-pacs could not be built (nil: it is).
var pacsBuildErr error

// cliDir is a test's working folder with its state file.
type cliDir struct {
	t   *testing.T
	dir string
	tag string
	env []string
}

// newCLIDir makes a test's folder. Tests that only run reprise commands in
// it call t.Parallel(): their folders, state files and processes are their
// own, and most of their time is spent waiting for those processes.
func newCLIDir(t *testing.T) *cliDir {
	t.Helper()
	dir := t.TempDir()
	d := &cliDir{t: t, dir: dir, tag: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())}
	t.Cleanup(d.killPlugins)
	return d
}

func (d *cliDir) path(name string) string { return filepath.Join(d.dir, name) }

func (d *cliDir) write(name, content string) string {
	d.t.Helper()
	if err := os.WriteFile(d.path(name), []byte(content), 0o644); err != nil {
		d.t.Fatal(err)
	}
	return d.path(name)
}

// command returns reprise ARGS, run in the test's folder, on its state file.
func (d *cliDir) command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), envCLI+"=1", envTag+"="+d.tag, "REPRISE_STATE="+d.path("reprise.db"))
	cmd.Env = append(cmd.Env, d.env...)
	return cmd
}

// run runs reprise ARGS to its end and returns stdout, stderr and the exit code.
func (d *cliDir) run(args ...string) (string, string, int) {
	d.t.Helper()
	cmd := d.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("reprise %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs reprise ARGS and fails the test unless it exits with want.
func (d *cliDir) mustRun(want int, args ...string) string {
	d.t.Helper()
	out, errs, code := d.run(args...)
	if code != want {
		d.t.Fatalf("reprise %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, tail(errs, 3000))
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// killPlugins kills the plugin processes of this test left behind by an
// engine killed with SIGKILL, with their process groups (what a power cut
// does to them).
func (d *cliDir) killPlugins() { d.killTagged() }

// killTagged is killPlugins, and says how many processes it signalled.
func (d *cliDir) killTagged() int {
	found := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(envTag+"="+d.tag+"\x00")) {
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		found++
	}
	return found
}

// statusJSON is the part of `status --json` the tests read.
type statusJSON struct {
	Run    string         `json:"run"`
	Status string         `json:"status"`
	Live   bool           `json:"live"`
	Total  int            `json:"total"`
	Done   int            `json:"done"`
	Counts map[string]int `json:"counts"`
	ByKind []struct {
		Key   string `json:"key"`
		Total int    `json:"total"`
	} `json:"by_kind"`
	ByCriticality []struct {
		Key string `json:"key"`
	} `json:"by_criticality"`
	Nodes []struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
	} `json:"nodes"`
	Waiting []string `json:"waiting"`
}

func (d *cliDir) status(args ...string) statusJSON {
	d.t.Helper()
	out := d.mustRun(0, append([]string{"status", "--json"}, args...)...)
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		d.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return s
}

const gatesGraph = `version: 1
name: lab
defaults: {retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: exec, criticality: vital, with: {restore: [sh, -c, "echo ad >> done.txt"]}}
  - {id: lis, kind: application, plugin: noop, depends_on: [ad]}
  - {id: lab-reentry, kind: data, plugin: manual, depends_on: [lis]}
  - {id: lab-report, kind: data, plugin: exec, depends_on: [lab-reentry], with: {restore: [sh, -c, "echo lab-report >> done.txt"]}}
`

func TestCLIGateParkApproveResumeVerify(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	out := d.mustRun(exitParked, "run", g)
	if !strings.Contains(out, "parked") || !strings.Contains(out, "reprise approve") {
		t.Errorf("run output:\n%s", out)
	}
	s := d.status()
	if s.Status != "parked" || s.Total != 4 || s.Done != 2 || len(s.Waiting) != 1 || s.Waiting[0] != "lab-reentry" {
		t.Errorf("status after park: %+v", s)
	}
	if len(s.Nodes) != 4 || len(s.ByKind) != 3 || len(s.ByCriticality) == 0 {
		t.Errorf("status nodes/breakdowns: %+v", s)
	}
	d.mustRun(exitUsage, "approve", s.Run, "lab-reentry")
	if _, errs, code := d.run("approve", s.Run, "ad", "--by", "alice"); code != exitError || !strings.Contains(errs, "not waiting") {
		t.Errorf("approve a succeeded node: exit %d, %s", code, errs)
	}
	d.mustRun(0, "approve", s.Run, "lab-reentry", "--by", "alice", "--comment", "paper forms typed in")
	d.mustRun(0, "resume")
	s = d.status(s.Run)
	if s.Status != "succeeded" || s.Done != 4 {
		t.Errorf("status after resume: %+v", s)
	}
	logOut := d.mustRun(0, "log", s.Run, "--node", "lab-reentry")
	if !strings.Contains(logOut, "approved") || !strings.Contains(logOut, "by alice") || !strings.Contains(logOut, "paper forms typed in") {
		t.Errorf("log --node lab-reentry:\n%s", logOut)
	}
	if out := d.mustRun(0, "log", s.Run, "--verify"); !strings.Contains(out, "intact") {
		t.Errorf("log --verify: %s", out)
	}
	runs := d.mustRun(0, "runs", "--json")
	if !strings.Contains(runs, s.Run) {
		t.Errorf("runs --json: %s", runs)
	}
	done, _ := os.ReadFile(d.path("done.txt"))
	if string(done) != "ad\nlab-report\n" {
		t.Errorf("steps ran: %q", done)
	}

	// A flipped byte in a journal entry is caught by --verify.
	db, err := os.ReadFile(d.path("reprise.db"))
	if err != nil {
		t.Fatal(err)
	}
	// The comment is in the approval's journal entry and in the node's
	// record (and maybe in free pages): flip it everywhere, so that the
	// entry is surely hit.
	if !bytes.Contains(db, []byte("paper forms typed in")) {
		t.Fatal("approval comment not found in the state file")
	}
	db = bytes.ReplaceAll(db, []byte("paper forms typed in"), []byte("Paper forms typed in"))
	if err := os.WriteFile(d.path("reprise.db"), db, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := d.run("log", s.Run, "--verify")
	if code != exitError || !strings.Contains(errs, "broken at entry") {
		t.Errorf("verify after a flipped byte: exit %d\n%s", code, errs)
	}
}

func TestCLIDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	out := d.mustRun(0, "run", "--dry-run", g)
	for _, want := range []string{"ad", "lab-report", "restore", "nothing was written"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(d.path("reprise.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run created a state file: %v", err)
	}
	if _, err := os.Stat(d.path("done.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run ran a restore step")
	}
}

// TestCLISecretsNeverPersisted runs an exec step that prints, outputs and
// fails with a secret from the environment, then searches the state file,
// the journal and the log file for it.
func TestCLISecretsNeverPersisted(t *testing.T) {
	t.Parallel()
	const secret = "Xk9-pa55w0rd-of-the-AD-admin"
	d := newCLIDir(t)
	d.env = append(d.env, "AD_PASSWORD="+secret)
	g := d.write("graph.yaml", `version: 1
name: secrets
defaults: {retries: 1, retry_delay: 1ms}
nodes:
  - id: ad
    kind: infrastructure
    plugin: exec
    with:
      restore: [sh, -c, 'echo "using $PW"; echo "stderr $PW" >&2; test -f again || { touch again; echo "bad $PW" >&2; exit 1; }']
      env: {PW: "${secret:AD_PASSWORD}"}
  - id: pki
    kind: infrastructure
    plugin: exec
    with:
      restore: [sh, -c, 'echo "$KEY" | sed -n 2p; echo "$KEY" | sed -n 3p >&2']
      env: {KEY: "${secret:file:ca.pem}"}
  - {id: app, kind: application, plugin: noop, depends_on: [ad, pki]}
`)
	const pem = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\nRTESMBAGA1UEChMJQmFsdGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYD\n-----END CERTIFICATE-----\n"
	d.write("ca.pem", pem)
	d.mustRun(0, "run", g)
	journal := d.mustRun(0, "log", "--json")
	for _, line := range strings.Split(pem, "\n")[1:3] {
		for name, data := range map[string]string{"journal": journal, "state file": readFile(t, d.path("reprise.db")), "log file": readFile(t, d.path("reprise.db.log"))} {
			if strings.Contains(data, line) {
				t.Errorf("the %s holds a line of the PEM secret", name)
			}
		}
	}
	for name, data := range map[string]string{"journal": journal, "state file": readFile(t, d.path("reprise.db")), "log file": readFile(t, d.path("reprise.db.log"))} {
		if strings.Contains(data, secret) {
			t.Errorf("the %s holds the secret", name)
		}
	}
	if !strings.Contains(readFile(t, d.path("reprise.db.log")), "[redacted]") {
		t.Error("the log file has no [redacted] marker: the step's output did not reach it, the test proves nothing")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestCLITokenNotInherited: the operator's token variables are not passed
// on to what reprise starts: a plugin process and the command its step
// runs see neither REPRISE_TOKEN nor REPRISE_TOKEN_FILE.
func TestCLITokenNotInherited(t *testing.T) {
	t.Parallel()
	const token = "rpr_0123456789abcdef-the-operators-token"
	d := newCLIDir(t)
	d.write("token.txt", token+"\n")
	d.env = append(d.env, "REPRISE_TOKEN="+token, "REPRISE_TOKEN_FILE="+d.path("token.txt"))
	g := d.write("graph.yaml", `version: 1
name: token-env
nodes:
  - {id: step, kind: application, plugin: exec, with: {restore: [sh, -c, 'env > seen.env; echo ok']}}
`)
	d.mustRun(0, "run", g)
	seen := readFile(t, d.path("seen.env"))
	if !strings.Contains(seen, "REPRISE_STATE=") {
		t.Fatalf("the step's environment lacks the command's own variables, the test proves nothing:\n%s", seen)
	}
	for _, bad := range []string{token, "REPRISE_TOKEN=", "REPRISE_TOKEN_FILE="} {
		if strings.Contains(seen, bad) {
			t.Errorf("the step's environment holds %q", bad)
		}
	}
}
