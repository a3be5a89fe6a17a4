package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// sortedLines returns the words of s, sorted, joined by spaces.
func sortedLines(s string) string {
	f := strings.Fields(s)
	slices.Sort(f)
	return strings.Join(f, " ")
}

// TestCLIRunRefusesUnfinished: a second `run` of a graph whose run is
// unfinished refuses (exit 2) naming that run, its progress and resume;
// --new starts a fresh run anyway and journals why.
func TestCLIRunRefusesUnfinished(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: twice
defaults: {retries: 0}
nodes:
  - {id: a, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo a >> ran.txt']}}
  - {id: b, kind: data, plugin: exec, with: {restore: [sh, -c, 'exit 1']}}
`)
	d.mustRun(exitFailedNodes, "run", "-q", g)
	first := d.status().Run
	out, errs, code := d.run("run", "-q", g)
	if code != exitUsage {
		t.Fatalf("second run: exit %d, want %d\n%s%s", code, exitUsage, out, errs)
	}
	for _, want := range []string{"run " + first + " of twice is unfinished", "1/2 nodes done", "reprise resume " + first, "--new"} {
		if !strings.Contains(errs, want) {
			t.Errorf("refusal lacks %q:\n%s", want, errs)
		}
	}
	if got := readFile(t, d.path("ran.txt")); got != "a\n" {
		t.Errorf("the refused run ran steps: %q", got)
	}
	_, errs, code = d.run("run", "-q", "--new", g)
	if code != exitFailedNodes || !strings.Contains(errs, "started while run "+first+" was unfinished") {
		t.Fatalf("run --new: exit %d\n%s", code, errs)
	}
	second := strings.TrimSpace(d.mustRun(0, "runs", "--latest"))
	if second == first {
		t.Fatal("run --new started no new run")
	}
	if log := d.mustRun(0, "log", second); !strings.Contains(log, "started while run "+first+" was unfinished") {
		t.Errorf("the new run's journal does not say why it started:\n%s", log)
	}
}

// TestCLIRetryOnlyThatNode: retry re-runs the node asked and nothing else;
// --dry-run says what would run and changes nothing; a mistyped id gets a
// suggestion.
func TestCLIRetryOnlyThatNode(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: retry
defaults: {retries: 0}
nodes:
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: scanner, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo scanner >> ran.txt; exit 1']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
`)
	d.mustRun(exitFailedNodes, "run", "-q", g)
	run := d.status().Run
	d.write("fixed", "")
	out := d.mustRun(0, "retry", run, "tape", "--downstream", "--dry-run")
	for _, want := range []string{"! tape [failed]: retry requested", "! db [blocked]", "2 node(s) would run again; nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("retry --dry-run lacks %q:\n%s", want, out)
		}
	}
	if got := sortedLines(readFile(t, d.path("ran.txt"))); got != "scanner tape" {
		t.Errorf("retry --dry-run ran steps: %q", got)
	}
	_, errs, code := d.run("retry", run, "tpae")
	if code == 0 || !strings.Contains(errs, `did you mean "tape"?`) {
		t.Errorf("retry of a mistyped node: exit %d\n%s", code, errs)
	}
	d.mustRun(exitFailedNodes, "retry", "-q", run, "tape")
	if got := sortedLines(readFile(t, d.path("ran.txt"))); got != "scanner tape tape" {
		t.Errorf("retry tape ran %q, want tape only (scanner is another failure, db was not asked)", got)
	}
	s := d.status(run)
	states := map[string]string{}
	for _, n := range s.Nodes {
		states[n.ID] = n.State
	}
	if states["tape"] != "succeeded" || states["scanner"] != "failed" || states["db"] != "blocked" {
		t.Errorf("states after retry: %v", states)
	}
}

// TestCLIApproveWithoutRun: approve without RUN finds the run where the
// gate waits; a mistyped id gets "did you mean" in approve and mark; -q
// prints nothing.
func TestCLIApproveWithoutRun(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", gatesGraph)
	d.mustRun(exitParked, "run", "-q", g)
	run := d.status().Run
	_, errs, code := d.run("approve", "lab-rentry", "--by", "Dr Martin")
	if code == 0 || !strings.Contains(errs, `did you mean "lab-reentry"?`) {
		t.Errorf("approve of a mistyped gate without RUN: exit %d\n%s", code, errs)
	}
	_, errs, code = d.run("approve", run, "lab-rentry", "--by", "Dr Martin")
	if code == 0 || !strings.Contains(errs, `did you mean "lab-reentry"?`) {
		t.Errorf("approve of a mistyped gate: exit %d\n%s", code, errs)
	}
	_, errs, code = d.run("mark", run, "lis2", "--done", "--reason", "by hand")
	if code == 0 || !strings.Contains(errs, `did you mean "lis"?`) {
		t.Errorf("mark of a mistyped node: exit %d\n%s", code, errs)
	}
	if out := d.mustRun(0, "approve", "-q", "lab-reentry", "--by", "Dr Martin"); out != "" {
		t.Errorf("approve -q printed %q", out)
	}
	for _, n := range d.status(run).Nodes {
		if n.ID == "lab-reentry" && n.State != "succeeded" {
			t.Errorf("lab-reentry after approve without RUN: %s", n.State)
		}
	}
	if out := d.mustRun(0, "mark", "-q", run, "lab-report", "--done", "--reason", "typed in by hand"); out != "" {
		t.Errorf("mark -q printed %q", out)
	}
}

// TestCLIRunCheck: run --check restores only what Check does not find
// restored, and records the others as restored with Check's outputs.
func TestCLIRunCheck(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: half
defaults: {retries: 0}
nodes:
  - id: ad
    kind: infrastructure
    plugin: exec
    with:
      restore: [sh, -c, 'echo ad >> ran.txt; touch ad.done']
      check: [sh, -c, 'test -f ad.done && echo host=dc1 >> "$REPRISE_OUTPUT"']
  - id: dns
    kind: infrastructure
    plugin: exec
    with: {restore: [sh, -c, 'echo dns >> ran.txt; touch dns.done'], check: [test, -f, dns.done]}
  - id: pacs
    kind: application
    plugin: exec
    depends_on: [ad, dns]
    with: {restore: [sh, -c, 'echo "pacs $HOST" >> ran.txt'], env: {HOST: "${nodes.ad.outputs.host}"}}
`)
	d.write("ad.done", "") // restored by hand before reprise was pointed at the site
	d.mustRun(0, "run", "-q", "--check", g)
	if got := readFile(t, d.path("ran.txt")); sortedLines(got) != sortedLines("dns\npacs dc1\n") {
		t.Errorf("steps ran %q, want dns and pacs only (ad was found restored, its host output reached pacs)", got)
	}
	run := d.status().Run
	if log := d.mustRun(0, "log", run); !strings.Contains(log, "restored") || !strings.Contains(log, "found restored by check") {
		t.Errorf("journal does not say ad was found restored:\n%s", log)
	}
}

// TestCLIDryRunUnknownOutput: a dry run shows an output not known yet as
// its placeholder "(known once X has run)", not as the plugin's parsing
// error, and does not call the node invalid for it.
func TestCLIDryRunUnknownOutput(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: dry
nodes:
  - {id: web, kind: application, plugin: noop, with: {outputs: {host: "127.0.0.1:18080"}}}
  - {id: web-up, kind: application, plugin: http, depends_on: [web], with: {url: "http://${nodes.web.outputs.host}/health", timeout: 1s}}
`)
	out, errs, code := d.run("run", "--dry-run", g)
	if code != 0 || !strings.Contains(out, "${nodes.web.outputs.host} (known once web has run)") || strings.Contains(out, "invalid character") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errs)
	}
}

// TestCLITimeoutKeepsDetail: an http restore that times out says the last
// status and a body excerpt it saw; an exec step that times out keeps its
// last output lines.
func TestCLITimeoutKeepsDetail(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "database not ready: replaying WAL")
	}))
	defer srv.Close()
	d := newCLIDir(t)
	g := d.write("graph.yaml", `version: 1
name: timeouts
defaults: {retries: 0}
nodes:
  - {id: web, kind: application, plugin: http, timeout: 3s, with: {url: "`+srv.URL+`/health", interval: 200ms, timeout: 1s}}
  - {id: db, kind: application, plugin: exec, timeout: 3s, with: {restore: [sh, -c, 'echo mounting backup; echo waiting for the archive lock; sleep 30']}}
`)
	out := d.mustRun(exitFailedNodes, "run", "-q", "--json", g)
	var res struct {
		Failed []struct{ ID, Error string } `json:"failed"`
	}
	if err := jsonUnmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for _, f := range res.Failed {
		errs[f.ID] = f.Error
	}
	for id, wants := range map[string][]string{
		"web": {"timed out", "status 503", "database not ready: replaying WAL"},
		"db":  {"timed out", "waiting for the archive lock"},
	} {
		for _, want := range wants {
			if !strings.Contains(errs[id], want) {
				t.Errorf("%s's error lacks %q: %q", id, want, errs[id])
			}
		}
	}
}
