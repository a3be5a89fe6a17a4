package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCLICleanRecovery drives zones and restore points through the command
// line: run parks at the zone gate and at a suspicious point, status says
// what to do, certify and restore-point record who and why (usage errors
// exit 2), resume finishes, and plan shows the zones.
func TestCLICleanRecovery(t *testing.T) {
	d := newCLIDir(t)
	for rel, data := range map[string]string{
		"points/lab/l2/HOW_TO_DECRYPT.txt": "pay",
		"points/lab/l1/results.csv":        strings.Repeat("patient;result\n", 100),
		"points/web/w1/bin/tool":           "..UPX!..",
		"rules.yar":                        "rule Packer : suspicious { strings: $a = \"UPX!\" condition: $a }\n",
	} {
		p := d.path(rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		d.write(rel, data)
	}
	graph := d.write("graph.yaml", `version: 1
name: clean-cli
zones:
  - {id: core, title: Trusted core}
  - {id: clinical, title: Care}
incident: {detected: '2026-11-30T03:00:00Z'}
scanners:
  notes: {type: ioc, names: ['*DECRYPT*']}
  rules: {type: yara, rules: [rules.yar]}
nodes:
  - {id: ad, kind: infrastructure, plugin: exec, zone: core, with: {restore: [sh, -c, 'true']}}
  - id: lab-data
    kind: data
    plugin: exec
    zone: clinical
    depends_on: [ad]
    scan: [notes]
    restore_points:
      - {id: l2, time: '2026-11-29T22:00:00Z', path: points/lab/l2}
      - {id: l1, time: '2026-11-28T22:00:00Z', path: points/lab/l1}
    with: {restore: [sh, -c, 'echo "$REPRISE_RESTORE_POINT" > lab.txt']}
  - id: web-data
    kind: data
    plugin: exec
    zone: clinical
    scan: [rules]
    restore_points: [{id: w1, time: '2026-11-29T12:00:00Z', path: points/web/w1}]
    with: {restore: [sh, -c, 'true']}
`)
	plan := d.mustRun(0, "plan", graph)
	if !strings.Contains(plan, "Zone 2: clinical — Care — 2 nodes, starts once zone core and those before it are certified") {
		t.Errorf("plan:\n%s", plan)
	}
	out := d.mustRun(4, "run", graph)
	runID := regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{4}\b`).FindString(out)
	if runID == "" {
		t.Fatalf("no run id in %q", out)
	}
	st := d.mustRun(0, "status", runID)
	for _, want := range []string{"core             1/1 done  ready to certify: reprise certify " + runID + " core --by NAME --comment TEXT",
		"clinical         0/2 done  held: a more trusted zone is not certified"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if _, errs, code := d.run("certify", runID, "core", "--by", "M. Martin"); code != 2 || !strings.Contains(errs, "--comment TEXT is required") {
		t.Errorf("certify without a comment: exit %d %q", code, errs)
	}
	d.mustRun(0, "certify", runID, "core", "--by", "M. Martin (RSSI)", "--comment", "AD rebuilt, EDR clean")
	d.mustRun(4, "resume", runID)
	st = d.mustRun(0, "status", runID)
	for _, want := range []string{"certified by M. Martin (RSSI)", "lab-data                     l1 (2026-11-28T22:00:00Z, clean)  data lost 29h0m",
		"web-data                     waits on suspicious point w1: reprise restore-point " + runID + " web-data --use w1"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if _, errs, code := d.run("restore-point", runID, "web-data", "--use", "w1", "--exclude", "w1", "--by", "x", "--reason", "y"); code != 2 || !strings.Contains(errs, "not both") {
		t.Errorf("--use and --exclude: exit %d %q", code, errs)
	}
	if _, errs, code := d.run("approve", runID, "web-data", "--by", "x"); code == 0 || !strings.Contains(errs, "restore-point") {
		t.Errorf("approve of a suspicious point: exit %d %q", code, errs)
	}
	d.mustRun(0, "restore-point", runID, "web-data", "--use", "w1", "--by", "Dr. Lefèvre", "--reason", "UPX is our backup agent")
	d.mustRun(0, "resume", runID) // the last zone's certification holds nothing back
	d.mustRun(0, "certify", runID, "clinical", "--by", "Dr. Lefèvre", "--comment", "checked")
	if got, _ := os.ReadFile(d.path("lab.txt")); string(got) != "l1\n" {
		t.Errorf("lab restored from %q", got)
	}
	log := d.mustRun(0, "log", runID)
	for _, want := range []string{"zone-certified", "point-scanned", "point-override", "point-chosen"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}
