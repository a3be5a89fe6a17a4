package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCLICleanRecovery drives zones and restore points through the command
// line: run parks at the zone gate and at a suspicious point, status says
// what to do, certify and restore-point record who and why (usage errors
// exit 2), resume finishes, and plan shows the zones.
func TestCLICleanRecovery(t *testing.T) {
	t.Parallel()
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
	checkTimeline(t, d, runID)
	html := d.mustRun(0, "report", runID, "--format", "html")
	md := d.mustRun(0, "report", runID, "--format", "markdown")
	for _, want := range []string{`<tr class="zone" data-zone="core" data-certified="yes">`, `<b>M. Martin (RSSI)</b>`,
		`<tr class="rpo" data-node="lab-data"><td><b>lab-data</b></td><td>l1</td><td>2026-11-28T22:00:00Z</td><td>clean</td><td class="num">29h0m</td>`,
		`<tr class="verdict" data-verdict="encrypted">`, `HOW_TO_DECRYPT.txt (notes *DECRYPT*)`, `<tr class="verdict" data-verdict="suspicious">`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, want := range []string{"## Trust zones", "| lab-data | l1 | 2026-11-28T22:00:00Z | clean | 29h0m | succeeded |", "## Restore point verdicts"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown report lacks %q", want)
		}
	}
	log := d.mustRun(0, "log", runID)
	for _, want := range []string{"zone-certified", "point-scanned", "point-override", "point-chosen"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// checkTimeline verifies the authorities' timeline against the journal:
// one row per entry, in order, each with the entry's hash, time and author,
// the chain verified by log --verify; the JSON form says the same.
func checkTimeline(t *testing.T, d *cliDir, runID string) {
	t.Helper()
	verify := d.mustRun(0, "log", runID, "--verify")
	var entries []struct {
		Seq  uint64            `json:"seq"`
		Time string            `json:"time"`
		Type string            `json:"type"`
		Node string            `json:"node"`
		By   string            `json:"by"`
		Data map[string]string `json:"data"`
		Hash string            `json:"hash"`
	}
	for _, line := range strings.Split(strings.TrimSpace(d.mustRun(0, "log", runID, "--json")), "\n") {
		var e struct {
			Seq  uint64            `json:"seq"`
			Time string            `json:"time"`
			Type string            `json:"type"`
			Node string            `json:"node"`
			By   string            `json:"by"`
			Data map[string]string `json:"data"`
			Hash string            `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log --json line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	if !strings.Contains(verify, fmt.Sprintf("%d entries, hash chain intact", len(entries))) {
		t.Errorf("log --verify says %q for %d entries ending %s", verify, len(entries), entries[len(entries)-1].Hash)
	}
	rows, err := csv.NewReader(strings.NewReader(d.mustRun(0, "report", runID, "--format", "timeline", "--tz", "Europe/Paris"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "seq,time_utc,time_local,who,what,node,zone,restore_point,verdict,detail,hash" || len(rows) != len(entries)+1 {
		t.Fatalf("timeline header %v, %d rows for %d entries", rows[0], len(rows)-1, len(entries))
	}
	zones := map[string]string{"ad": "core", "lab-data": "clinical", "web-data": "clinical"}
	for k, e := range entries {
		row := rows[k+1]
		who := e.By
		if who == "" {
			who = "reprise"
		}
		if row[0] != fmt.Sprint(e.Seq) || row[10] != e.Hash || row[3] != who || row[4] != e.Type || row[5] != e.Node {
			t.Errorf("row %d %v does not match entry %+v", k+1, row, e)
		}
		if ut, err := time.Parse(time.RFC3339Nano, row[1]); err != nil || !strings.HasSuffix(row[1], "Z") {
			t.Errorf("row %d time_utc %q: %v", k+1, row[1], err)
		} else if lt, err := time.Parse(time.RFC3339Nano, row[2]); err != nil || !lt.Equal(ut) || strings.HasSuffix(row[2], "Z") {
			t.Errorf("row %d time_local %q is not %q in Paris", k+1, row[2], row[1])
		}
		if e.Node != "" && row[6] != zones[e.Node] || e.Type == "zone-certified" && row[6] != e.Data["zone"] {
			t.Errorf("row %d zone %q for %+v", k+1, row[6], e)
		}
		if row[7] != e.Data["point"] || row[8] != e.Data["verdict"] {
			t.Errorf("row %d point/verdict %q/%q for %+v", k+1, row[7], row[8], e.Data)
		}
	}
	var tj struct {
		Run     string `json:"run"`
		Journal struct {
			Entries int    `json:"entries"`
			OK      bool   `json:"ok"`
			Head    string `json:"head"`
		} `json:"journal"`
		Actions []struct {
			Hash string `json:"hash"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(d.mustRun(0, "report", runID, "--format", "timeline-json")), &tj); err != nil {
		t.Fatal(err)
	}
	if tj.Run != runID || !tj.Journal.OK || tj.Journal.Entries != len(entries) || len(tj.Actions) != len(entries) ||
		tj.Journal.Head != entries[len(entries)-1].Hash || tj.Actions[len(entries)-1].Hash != tj.Journal.Head {
		t.Errorf("timeline-json %+v", tj)
	}
}
