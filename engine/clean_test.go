package engine_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/hosttest"
)

func mustFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func realEngine(t *testing.T, st *state.Store, g *graphs.Graph, now time.Time) *engine.Engine {
	t.Helper()
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand})
	t.Cleanup(func() { h.Close() })
	return engine.New(st, h, engine.Options{Now: func() time.Time { return now }})
}

// journal returns the run's entries of the given types for a node.
func journal(t *testing.T, st *state.Store, runID, node string, types ...state.EntryType) []state.Entry {
	t.Helper()
	var out []state.Entry
	err := st.Journal(runID, 0, func(e state.Entry) error {
		for _, ty := range types {
			if e.Type == ty && e.NodeID == node {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const cleanGraph = `version: 1
name: clean
incident: {detected: '2026-11-30T03:00:00Z'}
scanners:
  iocs: {type: ioc, hash_lists: [iocs.txt], names: ['*DECRYPT*']}
  entropy: {type: entropy, threshold: 0.3}
  webshells: {type: yara, rules: [web.yar]}
nodes:
  - id: dpi-data
    kind: data
    plugin: exec
    scan: [iocs, entropy, webshells]
    restore_points:
      - {id: p1, time: '2026-11-28T02:00:00Z', path: points/dpi/p1}
      - {id: p4, time: '2026-11-30T05:00:00Z', path: points/dpi/p4}
      - {id: p3, time: '2026-11-30T02:00:00Z', path: points/dpi/p3}
      - {id: p2, time: '2026-11-29T02:00:00Z', path: points/dpi/p2}
    with: {restore: [sh, -c, 'echo "$REPRISE_RESTORE_POINT $REPRISE_RESTORE_PATH $REPRISE_RESTORE_POINT_TIME" > restored-dpi.txt; echo restore_point=forged >> "$REPRISE_OUTPUT"; echo rows=12 >> "$REPRISE_OUTPUT"']}
  - id: lab-data
    kind: data
    plugin: exec
    scan: [iocs, entropy]
    restore_points:
      - {id: l2, time: '2026-11-29T22:00:00Z', path: points/lab/l2}
      - {id: l1, time: '2026-11-28T22:00:00Z', path: points/lab/l1}
    with: {restore: [sh, -c, 'touch restored-lab.txt']}
  - id: web-data
    kind: data
    plugin: exec
    scan: [webshells]
    restore_points:
      - {id: w1, time: '2026-11-29T12:00:00Z', path: points/web/w1}
    with: {restore: [sh, -c, 'echo "$REPRISE_RESTORE_POINT" > restored-web.txt']}
`

const webRules = `
rule PHP_WebShell : webshell { strings: $a = "eval($_POST" condition: $a }
rule Packer : suspicious { strings: $a = "UPX!" condition: $a }
`

// mustCleanFixture writes the points of cleanGraph: dpi's newest point
// before the incident is encrypted (random files and a ransom note), the
// next holds a file on the IOC list, the oldest is clean; both lab points
// are bad; web's only point is suspicious.
func mustCleanFixture(t *testing.T, dir string) {
	implant := []byte("powershell -nop -w hidden -enc SQBFAFgA\n")
	sum := sha256.Sum256(implant)
	mustFile(t, filepath.Join(dir, "iocs.txt"), []byte("# test feed\n"+hex.EncodeToString(sum[:])+"\n"))
	mustFile(t, filepath.Join(dir, "web.yar"), []byte(webRules))
	text := []byte(strings.Repeat("patient;ward;result\n", 200))
	pt := func(node, id string) string { return filepath.Join(dir, "points", node, id) }
	for _, id := range []string{"p1", "p2", "p3", "p4"} {
		mustFile(t, filepath.Join(pt("dpi", id), "records", "a.csv"), text)
	}
	mustFile(t, filepath.Join(pt("dpi", "p2"), "tasks", "update.ps1"), implant)
	for k := range 3 {
		mustFile(t, filepath.Join(pt("dpi", "p3"), "records", fmt.Sprintf("r%d.csv.locked", k)), randomData(t, 8192))
	}
	mustFile(t, filepath.Join(pt("dpi", "p3"), "HOW_TO_DECRYPT.txt"), []byte("pay"))
	mustFile(t, filepath.Join(pt("lab", "l2"), "README_DECRYPT.html"), []byte("pay"))
	mustFile(t, filepath.Join(pt("lab", "l1"), "x.ps1"), implant)
	mustFile(t, filepath.Join(pt("web", "w1"), "bin", "tool"), []byte("..UPX!.."))
}

// TestRestorePointSelection runs the real engine, exec plugin and scanner
// commands: newest first, the point after the incident is skipped, the
// encrypted and the compromised ones are rejected and the clean one is
// restored (its id and path given to the step, the RPO achieved as an
// output); a node without a clean point fails with one line per point; a
// suspicious point waits for an operator, who cannot approve it but can
// decide to use it, journaled, and the resume restores from it.
func TestRestorePointSelection(t *testing.T) {
	dir := t.TempDir()
	mustCleanFixture(t, dir)
	g := enginetest.MustGraph(t, dir, cleanGraph)
	st := enginetest.MustStore(t, dir)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	e := realEngine(t, st, g, now)
	ctx := context.Background()
	res, err := e.Start(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	states := enginetest.NodeStates(t, st, res.RunID)
	if states["dpi-data"] != state.NodeSucceeded || states["lab-data"] != state.NodeFailed || states["web-data"] != state.NodeWaiting {
		t.Fatalf("states %v (result %+v)", states, res)
	}
	got, err := os.ReadFile(filepath.Join(dir, "restored-dpi.txt"))
	if want := "p1 " + filepath.Join(dir, "points/dpi/p1") + " 2026-11-28T02:00:00Z\n"; err != nil || string(got) != want {
		t.Errorf("the step got %q, %v; want %q", got, err, want)
	}
	rec, _ := st.Node(res.RunID, "dpi-data")
	for k, want := range map[string]string{"restore_point": "p1", "restore_point_time": "2026-11-28T02:00:00Z",
		"restore_point_verdict": "clean", "data_lost": "49h0m", "rows": "12"} {
		if rec.Outputs[k] != want {
			t.Errorf("output %s = %q, want %q", k, rec.Outputs[k], want)
		}
	}
	var trail []string
	for _, en := range journal(t, st, res.RunID, "dpi-data", state.EntryPointSkipped, state.EntryScanned, state.EntryPointChosen) {
		trail = append(trail, fmt.Sprintf("%s %s %s", en.Type, en.Data["point"], en.Data["verdict"]))
	}
	want := []string{"point-skipped p4 ", "point-scanned p3 encrypted", "point-scanned p2 compromised", "point-scanned p1 clean", "point-chosen p1 clean"}
	if strings.Join(trail, "|") != strings.Join(want, "|") {
		t.Errorf("journal:\n%s\nwant\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	p2 := journal(t, st, res.RunID, "dpi-data", state.EntryScanned)[1]
	if !strings.Contains(p2.Data["findings"], "tasks/update.ps1\tiocs\t") || !strings.Contains(p2.Data["findings"], "\tcompromised") {
		t.Errorf("p2 findings %q", p2.Data["findings"])
	}

	lab, _ := st.Node(res.RunID, "lab-data")
	lines := strings.Split(lab.LastError, "\n")
	if len(lines) != 3 || lines[0] != "no clean restore point:" ||
		!strings.HasPrefix(lines[1], "l2 (2026-11-29T22:00:00Z): encrypted: README_DECRYPT.html (iocs *DECRYPT*)") ||
		!strings.HasPrefix(lines[2], "l1 (2026-11-28T22:00:00Z): compromised: x.ps1 (iocs sha256 ") {
		t.Errorf("lab-data error:\n%s", lab.LastError)
	}

	web, _ := st.Node(res.RunID, "web-data")
	if web.Outputs["suspicious_point"] != "w1" || !strings.Contains(web.LastError+journalMsg(t, st, res.RunID, "web-data"), "w1 (2026-11-29T12:00:00Z) is suspicious: bin/tool (webshells Packer)") {
		t.Errorf("web-data waits with %+v", web)
	}
	if _, err := os.Stat(filepath.Join(dir, "restored-web.txt")); err == nil {
		t.Errorf("the suspicious point was restored without a decision")
	}
	if err := e.Approve(ctx, res.RunID, "web-data", "M. Martin", "ok"); !errors.Is(err, engine.ErrPointDecision) {
		t.Errorf("approve of a suspicious point: %v, want ErrPointDecision", err)
	}
	for _, bad := range [][4]string{{"keep", "w1", "M. Martin", "x"}, {"use", "w9", "M. Martin", "x"}, {"use", "w1", "", "x"}, {"use", "w1", "M. Martin", " "}} {
		if err := e.RestorePointDecision(ctx, res.RunID, "web-data", bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("decision %v accepted", bad)
		}
	}
	if err := e.RestorePointDecision(ctx, res.RunID, "dpi-data", "use", "p2", "M. Martin", "x"); err == nil || !strings.Contains(err.Error(), "retry it") {
		t.Errorf("decision on a restored node: %v", err)
	}
	if err := e.RestorePointDecision(ctx, res.RunID, "web-data", "use", "w1", "Dr. Lefèvre (RSSI)", "UPX packer is our own backup agent"); err != nil {
		t.Fatal(err)
	}
	res2, err := e.Resume(ctx, res.RunID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st2 := enginetest.NodeStates(t, st, res.RunID); st2["web-data"] != state.NodeSucceeded {
		t.Fatalf("after the decision: %v (%+v)", st2, res2)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "restored-web.txt")); string(got) != "w1\n" {
		t.Errorf("web restored from %q", got)
	}
	ov := journal(t, st, res.RunID, "web-data", state.EntryPointOverride, state.EntryPointChosen)
	if len(ov) != 2 || ov[0].By != "Dr. Lefèvre (RSSI)" || ov[0].Data["action"] != "use" || ov[0].Message != "UPX packer is our own backup agent" ||
		ov[1].Data["by"] != "Dr. Lefèvre (RSSI)" || ov[1].Data["verdict"] != "suspicious" {
		t.Errorf("decision journal %+v", ov)
	}
	if rep, err := st.Verify(res.RunID); err != nil || !rep.OK {
		t.Errorf("journal verify: %+v %v", rep, err)
	}
}

func journalMsg(t *testing.T, st *state.Store, runID, node string) string {
	en := journal(t, st, runID, node, state.EntryWaiting)
	if len(en) == 0 {
		return ""
	}
	return en[len(en)-1].Message
}
