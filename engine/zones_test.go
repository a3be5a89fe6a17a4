package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/enginetest"
)

// TestZoneCertification runs the real engine and exec plugin: no node of a
// zone starts before every more trusted zone is certified; certification
// needs the zone's nodes done and the zones before it certified, and is
// journaled with who and why; evidence is taken before the machine it
// preserves is wiped.
func TestZoneCertification(t *testing.T) {
	dir := t.TempDir()
	g := enginetest.MustGraph(t, dir, `version: 1
name: zones
zones:
  - {id: core, title: Trusted core}
  - {id: clinical, title: Care}
  - {id: outside, title: Outside world}
incident: {detected: '2026-11-30T03:00:00Z', require_evidence: true}
nodes:
  - {id: ad, kind: infrastructure, plugin: exec, zone: core, wipes: [dc01], with: {restore: [sh, -c, 'echo ad >> order.txt']}}
  - {id: dc01-image, kind: infrastructure, plugin: exec, zone: core, evidence: true, preserves: [dc01], with: {restore: [sh, -c, 'sleep 0.2; echo dc01-image >> order.txt']}}
  - {id: dpi, kind: application, plugin: exec, zone: clinical, depends_on: [ad], with: {restore: [sh, -c, 'echo dpi >> order.txt']}}
  - {id: lab, kind: application, plugin: exec, zone: clinical, with: {restore: [sh, -c, 'echo lab >> order.txt']}}
  - {id: mssante, kind: application, plugin: exec, zone: outside, with: {restore: [sh, -c, 'echo mssante >> order.txt']}}
  - {id: dpi-to-mssante, kind: interface, plugin: exec, zone: outside, between: [dpi, mssante], with: {restore: [sh, -c, 'echo link >> order.txt']}}
`)
	st := enginetest.MustStore(t, dir)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	e := realEngine(t, st, g, now)
	ctx := context.Background()
	order := func() string { return strings.TrimSpace(strings.ReplaceAll(fileText(t, dir, "order.txt"), "\n", " ")) }

	res, err := e.Start(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunParked || strings.Join(res.Uncertified, ",") != "core,clinical" {
		t.Fatalf("first session: %+v, want parked waiting for core", res)
	}
	if got := order(); got != "dc01-image ad" {
		t.Fatalf("ran %q, want the evidence, then the wipe, and nothing of a later zone", got)
	}
	if err := e.Certify(ctx, res.RunID, "clinical", "M. Martin", "ok"); !errors.Is(err, engine.ErrZoneNotReady) || !strings.Contains(err.Error(), `certify zone "core" first`) {
		t.Errorf("certify clinical before core: %v", err)
	}
	if err := e.Certify(ctx, res.RunID, "core", "", "ok"); err == nil {
		t.Errorf("certify without a name accepted")
	}
	if err := e.Certify(ctx, res.RunID, "cor", "M. Martin", "ok"); err == nil || !strings.Contains(err.Error(), "want one of core, clinical, outside") {
		t.Errorf("unknown zone: %v", err)
	}
	if err := e.Certify(ctx, res.RunID, "core", "M. Martin (RSSI)", "AD rebuilt from the golden image, krbtgt reset twice, EDR clean"); err != nil {
		t.Fatal(err)
	}
	if err := e.Certify(ctx, res.RunID, "core", "M. Martin (RSSI)", "again"); err == nil {
		t.Errorf("certified twice")
	}
	if err := e.Certify(ctx, res.RunID, "clinical", "M. Martin", "ok"); !errors.Is(err, engine.ErrZoneNotReady) || !strings.Contains(err.Error(), "not done: dpi (pending), lab (pending)") {
		t.Errorf("certify clinical before its nodes ran: %v", err)
	}

	res, err = e.Resume(ctx, res.RunID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != state.RunParked || strings.Join(res.Uncertified, ",") != "clinical" {
		t.Fatalf("second session: %+v", res)
	}
	if got := order(); !strings.HasPrefix(got, "dc01-image ad ") || strings.Contains(got, "mssante") || len(strings.Fields(got)) != 4 {
		t.Fatalf("ran %q", got)
	}
	if err := e.Certify(ctx, res.RunID, "clinical", "Dr. Lefèvre", "DPI and lab checked by the editors"); err != nil {
		t.Fatal(err)
	}
	res, err = e.Resume(ctx, res.RunID, nil)
	if err != nil || res.Status != state.RunSucceeded {
		t.Fatalf("third session: %+v %v", res, err)
	}
	run, _ := st.Run(res.RunID)
	if len(run.Certified) != 2 || run.Certified[0].Zone != "core" || run.Certified[0].By != "M. Martin (RSSI)" || !run.Certified[1].At.Equal(now) {
		t.Errorf("certifications %+v", run.Certified)
	}
	var certs []string
	st.Journal(res.RunID, 0, func(en state.Entry) error {
		if en.Type == state.EntryCertified {
			certs = append(certs, en.Data["zone"]+" by "+en.By+": "+en.Message)
		}
		return nil
	})
	if len(certs) != 2 || certs[0] != "core by M. Martin (RSSI): AD rebuilt from the golden image, krbtgt reset twice, EDR clean" {
		t.Errorf("journal %q", certs)
	}
}

func fileText(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
