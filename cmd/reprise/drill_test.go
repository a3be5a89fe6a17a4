package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/state"
)

// drillGraph has an exec node that writes $REPRISE_DRILL as its output
// DRILL (what the plugin was told), a noop, and a node that always fails:
// a run of it ends failed, so it stays resumable until cleaned up.
const drillGraph = `version: 1
name: rehearsal
defaults: {retries: 0}
nodes:
  - {id: ad, kind: infrastructure, plugin: exec, with: {restore: [sh, -c, 'echo "DRILL=$REPRISE_DRILL" > "$REPRISE_OUTPUT"']}}
  - {id: dpi, kind: application, plugin: noop, depends_on: [ad]}
  - {id: tape, kind: data, plugin: exec, depends_on: [ad], with: {restore: [sh, -c, 'echo "tape$REPRISE_DRILL" >> tape.txt; exit 1']}}
`

// drillStatus is the part of `status --json` about drills.
type drillStatus struct {
	Run     string `json:"run"`
	Drill   bool   `json:"drill"`
	Cleanup *struct {
		By   string `json:"by"`
		At   string `json:"at"`
		Note string `json:"note"`
	} `json:"cleanup"`
}

func (d *cliDir) drillStatus(runID string) drillStatus {
	d.t.Helper()
	out := d.mustRun(0, "status", "--json", runID)
	var s drillStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		d.t.Fatalf("status --json: %v\n%s", err, out)
	}
	if s.Run != runID {
		d.t.Fatalf("status --json %s: run %q", runID, s.Run)
	}
	return s
}

// nodeOutput reads node's output key in run from the state file (no
// process holds it).
func nodeOutput(t *testing.T, d *cliDir, runID, node, key string) string {
	t.Helper()
	st, err := state.Open(d.path("reprise.db"), state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, err := st.Node(runID, node)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Outputs[key]
}

// runsRow returns the line of `reprise runs` for runID.
func runsRow(t *testing.T, out, runID string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, runID+" ") {
			return l
		}
	}
	t.Fatalf("runs lists no %s:\n%s", runID, out)
	return ""
}

// TestCLIDrill: a drill runs the real plan with its plugins told so;
// status and runs say it is a drill; its clean-up is recorded by cleanup
// (only for drills, with --by and --note), after which status shows the
// record and the drill cannot be resumed.
func TestCLIDrill(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	g := d.write("graph.yaml", drillGraph)

	// A real run first: not a drill, and runs shows no DRILL column.
	_, errs, code := d.run("run", "-q", g)
	if code != exitFailedNodes || strings.Contains(errs, "DRILL") {
		t.Fatalf("real run: exit %d, want %d, without DRILL on stderr:\n%s", code, exitFailedNodes, errs)
	}
	real := strings.TrimSpace(d.mustRun(0, "runs", "--latest"))
	if out := d.mustRun(0, "runs"); strings.Contains(out, "DRILL") || strings.Contains(out, "drill") {
		t.Errorf("runs without any drill marks one:\n%s", out)
	}
	if got := nodeOutput(t, d, real, "ad", "DRILL"); got != "0" {
		t.Errorf("real run: exec saw REPRISE_DRILL=%q, want 0", got)
	}
	if out := d.mustRun(0, "status", real); strings.Contains(out, "DRILL") || strings.Contains(out, "clean-up") {
		t.Errorf("status of a real run speaks of a drill:\n%s", out)
	}

	// The dry run of a drill says so and writes nothing.
	out, errs, code := d.run("run", "--drill", "--dry-run", g)
	if code != 0 || !strings.Contains(out, "dry run of rehearsal (drill)") || !strings.Contains(errs, "DRILL") {
		t.Errorf("run --drill --dry-run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	// The drill.
	_, errs, code = d.run("run", "-q", "--drill", g)
	if code != exitFailedNodes {
		t.Fatalf("run --drill: exit %d, want %d\n%s", code, exitFailedNodes, tail(errs, 3000))
	}
	if first, _, _ := strings.Cut(errs, "\n"); !strings.HasPrefix(first, "DRILL: an exercise on the real plan of rehearsal") {
		t.Errorf("run --drill: first stderr line %q, want the DRILL line", first)
	}
	drill := strings.TrimSpace(d.mustRun(0, "runs", "--latest"))
	if drill == real {
		t.Fatal("run --drill started no new run")
	}
	if !strings.Contains(errs, "reprise cleanup "+drill+" --by NAME --note TEXT") {
		t.Errorf("run --drill does not say how to record the clean-up:\n%s", errs)
	}
	if got := nodeOutput(t, d, drill, "ad", "DRILL"); got != "1" {
		t.Errorf("drill: exec saw REPRISE_DRILL=%q, want 1", got)
	}
	out = d.mustRun(0, "status", drill)
	lines := strings.Split(out, "\n")
	if len(lines) < 3 || lines[0] != "DRILL — an exercise on the real plan" ||
		lines[1] != "clean-up: not recorded yet (reprise cleanup "+drill+" --by NAME --note TEXT)" {
		t.Errorf("status of the drill before clean-up:\n%s", out)
	}
	if s := d.drillStatus(drill); !s.Drill || s.Cleanup != nil {
		t.Errorf("status --json of the drill before clean-up: %+v", s)
	}
	if s := d.drillStatus(real); s.Drill || s.Cleanup != nil {
		t.Errorf("status --json of the real run: %+v", s)
	}
	out = d.mustRun(0, "runs")
	if !strings.Contains(strings.SplitN(out, "\n", 2)[0], "DRILL") {
		t.Errorf("runs with a drill has no DRILL column:\n%s", out)
	}
	if row := runsRow(t, out, drill); !strings.HasSuffix(row, " drill") {
		t.Errorf("runs row of the drill: %q, want it to end with drill", row)
	}
	if row := runsRow(t, out, real); !strings.HasSuffix(row, " -") {
		t.Errorf("runs row of the real run: %q, want it to end with -", row)
	}

	// Resumed before its clean-up, a drill stays a drill and says so: the
	// failed tape step runs again and is told it is a drill.
	_, errs, code = d.run("resume", "-q", drill)
	if code != exitFailedNodes || !strings.Contains(errs, "DRILL: run "+drill+" of ") {
		t.Errorf("resume of the drill: exit %d, want %d with a DRILL line:\n%s", code, exitFailedNodes, errs)
	}
	if taped := strings.Fields(fileText(d, "tape.txt")); len(taped) == 0 || taped[len(taped)-1] != "tape1" {
		t.Errorf("resumed drill: the tape step's runs %v, want the last one told REPRISE_DRILL=1", taped)
	}

	// Usage errors (exit 2) and refusals (exit 1) record nothing.
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"cleanup", drill, "--note", "VMs reverted"}, exitUsage, []string{"--by NAME is required"}},
		{[]string{"cleanup", drill, "--by", "M. Martin"}, exitUsage, []string{"--note TEXT is required"}},
		{[]string{"cleanup", drill, "--by", " ", "--note", "VMs reverted"}, exitUsage, []string{"--by NAME is required"}},
		{[]string{"cleanup", "--by", "M. Martin", "--note", "VMs reverted"}, exitUsage, []string{"RUN"}},
		{[]string{"cleanup", real, "--by", "M. Martin", "--note", "VMs reverted"}, exitError, []string{real, "only drills are cleaned up"}},
		{[]string{"cleanup", "20991231-nope", "--by", "M. Martin", "--note", "VMs reverted"}, exitError, []string{`run "20991231-nope": run not found`}},
	} {
		out, errs, code := d.run(tc.args...)
		if code != tc.code || out != "" {
			t.Errorf("reprise %s: exit %d, want %d; stdout %q", strings.Join(tc.args, " "), code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("reprise %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), w, errs)
			}
		}
	}
	if s := d.drillStatus(drill); s.Cleanup != nil {
		t.Fatalf("a refused clean-up was recorded: %+v", s.Cleanup)
	}

	// The clean-up.
	const note = "test VMs reverted to their snapshots, exercise DNS zone deleted"
	out = d.mustRun(0, "cleanup", drill, "--by", "M. Martin", "--note", note)
	if want := "recorded clean-up of drill " + drill + " by M. Martin\n"; out != want {
		t.Errorf("cleanup: stdout %q, want %q", out, want)
	}
	s := d.drillStatus(drill)
	if !s.Drill || s.Cleanup == nil || s.Cleanup.By != "M. Martin" || s.Cleanup.Note != note || s.Cleanup.At == "" {
		t.Errorf("status --json after clean-up: %+v", s)
	}
	out = d.mustRun(0, "status", drill)
	lines = strings.Split(out, "\n")
	if len(lines) < 2 || lines[0] != "DRILL — an exercise on the real plan" ||
		!strings.HasPrefix(lines[1], "clean-up: recorded by M. Martin at ") || !strings.HasSuffix(lines[1], ": "+note) {
		t.Errorf("status of the drill after clean-up:\n%s", out)
	}
	if row := runsRow(t, d.mustRun(0, "runs"), drill); !strings.HasSuffix(row, " drill, cleaned up") {
		t.Errorf("runs row of the cleaned-up drill: %q", row)
	}
	var runs []state.Run
	if err := jsonUnmarshal(d.mustRun(0, "runs", "--json"), &runs); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range runs {
		switch r.ID {
		case drill:
			seen++
			if !r.Options.Drill || r.Cleanup == nil || r.Cleanup.By != "M. Martin" || r.Cleanup.Note != note {
				t.Errorf("runs --json, the drill: options %+v, cleanup %+v", r.Options, r.Cleanup)
			}
		case real:
			seen++
			if r.Options.Drill || r.Cleanup != nil {
				t.Errorf("runs --json, the real run: options %+v, cleanup %+v", r.Options, r.Cleanup)
			}
		}
	}
	if seen != 2 {
		t.Errorf("runs --json lists %d of the 2 runs", seen)
	}
	if out := d.mustRun(0, "log", drill); !strings.Contains(out, "cleaned-up") || !strings.Contains(out, note) {
		t.Errorf("log of the drill has no clean-up entry:\n%s", out)
	}

	// Cleaned up: resume RUN is refused, naming who cleaned it up, and
	// runs nothing; resume without RUN goes on with the real run.
	tapes := len(strings.Fields(fileText(d, "tape.txt")))
	_, errs, code = d.run("resume", "-q", drill)
	if code != exitError || !strings.Contains(errs, "cleaned up by M. Martin") || !strings.Contains(errs, drill) {
		t.Errorf("resume of the cleaned-up drill: exit %d, want %d naming who cleaned it up:\n%s", code, exitError, errs)
	}
	if n := len(strings.Fields(fileText(d, "tape.txt"))); n != tapes {
		t.Errorf("resume of the cleaned-up drill ran %d step(s)", n-tapes)
	}
	out = d.mustRun(exitFailedNodes, "resume", "-q")
	if !strings.Contains(out, "run "+real+" failed") {
		t.Errorf("resume without RUN did not go on with the real run %s:\n%s", real, out)
	}
}

// fileText returns the content of a file of the test's folder, ""
// if there is none.
func fileText(d *cliDir, name string) string {
	b, _ := readFileIfAny(d.path(name))
	return string(b)
}
