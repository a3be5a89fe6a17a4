package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// archive is a test fixture: a backup folder with its manifest, and an
// empty target folder, all under one temporary folder.
type archive struct {
	dir, backup, target, manifest string
	files                         map[string]string // path → content
}

// mustArchive writes two studies (three files) and their manifest.
func mustArchive(t *testing.T) *archive {
	t.Helper()
	dir := t.TempDir()
	a := &archive{dir: dir, backup: filepath.Join(dir, "backup"), target: filepath.Join(dir, "pacs"),
		manifest: filepath.Join(dir, "backup.sha256"),
		files: map[string]string{
			"CT-2024-0001/slice-001.dcm": "DICM ct slice one",
			"CT-2024-0001/slice-002.dcm": "DICM ct slice two",
			"MR-2024-0042/series-1.dcm":  "DICM mr series",
		}}
	var manifest strings.Builder
	manifest.WriteString("# backup of 2026-11-27\n")
	for p, content := range a.files {
		mustWrite(t, filepath.Join(a.backup, p), content)
		sum := sha256.Sum256([]byte(content))
		fmt.Fprintf(&manifest, "%s  %s\n", hex.EncodeToString(sum[:]), p)
	}
	mustWrite(t, a.manifest, manifest.String())
	return a
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// request returns a request for node, with paths relative to the archive folder
// (the request's WorkDir), as a graph would write them.
func (a *archive) request(node string) *sdk.Request {
	req := sdk.NewRequest(node, map[string]any{"backup": "backup", "target": "pacs", "manifest": "backup.sha256"})
	req.WorkDir = a.dir
	return req
}

func TestRestoreCheckVerify(t *testing.T) {
	a := mustArchive(t)
	p := &Plugin{}
	ctx := context.Background()

	c, err := p.Check(ctx, a.request("pacs"))
	if err != nil || c.Restored || !strings.Contains(c.Message, "3 of 3 files missing") {
		t.Fatalf("Check before = %+v, %v", c, err)
	}
	rec := sdk.NewRecorder()
	if err := p.Restore(ctx, a.request("pacs"), rec.Stream); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	want := map[string]string{"studies": "2", "files": "3", "bytes": "48", "copied": "3"}
	if got := rec.Outputs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outputs = %v, want %v", got, want)
	}
	if ev := rec.Events(); ev[len(ev)-5].Kind != "progress" || ev[len(ev)-5].Percent != 100 {
		t.Errorf("last progress = %+v, want 100%%", ev[len(ev)-5])
	}
	for p, content := range a.files {
		if b, err := os.ReadFile(filepath.Join(a.target, p)); err != nil || string(b) != content {
			t.Errorf("target %s = %q, %v", p, b, err)
		}
	}
	wantCheck := map[string]string{"studies": "2", "files": "3", "bytes": "48", "copied": "0"}
	if c, err := p.Check(ctx, a.request("pacs")); err != nil || !c.Restored || fmt.Sprint(c.Outputs) != fmt.Sprint(wantCheck) {
		t.Errorf("Check after = %+v, %v; want restored with outputs %v", c, err, wantCheck)
	}
	if v, err := p.Verify(ctx, a.request("pacs")); err != nil || v.Outputs["verified"] != "3" {
		t.Errorf("Verify = %+v, %v", v, err)
	}

	// A second restore keeps what is in place.
	rec = sdk.NewRecorder()
	if err := p.Restore(ctx, a.request("pacs"), rec.Stream); err != nil || rec.Outputs()["copied"] != "0" {
		t.Errorf("second Restore: copied %s, %v; want 0", rec.Outputs()["copied"], err)
	}

	// Damage in the archive: Verify fails and names the file.
	mustWrite(t, filepath.Join(a.target, "MR-2024-0042/series-1.dcm"), "ransomware was here")
	if _, err := p.Verify(ctx, a.request("pacs")); err == nil || !strings.Contains(err.Error(), "MR-2024-0042/series-1.dcm differs") {
		t.Errorf("Verify after damage: err = %v", err)
	}
}

func TestRestoreRefusesCorruptBackup(t *testing.T) {
	a := mustArchive(t)
	mustWrite(t, filepath.Join(a.backup, "CT-2024-0001/slice-002.dcm"), "bit rot")
	err := (&Plugin{}).Restore(context.Background(), a.request("pacs"), sdk.NewRecorder().Stream)
	if err == nil || !strings.Contains(err.Error(), "backup file CT-2024-0001/slice-002.dcm is corrupt") {
		t.Errorf("err = %v, want a corrupt backup error", err)
	}
}

func TestDryRunCopiesNothing(t *testing.T) {
	a := mustArchive(t)
	req := a.request("pacs")
	req.DryRun = true
	rec := sdk.NewRecorder()
	if err := (&Plugin{}).Restore(context.Background(), req, rec.Stream); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.target); !os.IsNotExist(err) {
		t.Errorf("dry run created %s", a.target)
	}
	if !strings.HasPrefix(rec.Message(), "dry run: would restore 2 studies") {
		t.Errorf("message = %q", rec.Message())
	}
}

func TestValidateAndManifestErrors(t *testing.T) {
	p := &Plugin{}
	ctx := context.Background()
	problems, err := p.Validate(ctx, sdk.NewRequest("pacs", map[string]any{"backup": "/b", "targt": "/t"}))
	if err != nil || len(problems) != 3 {
		t.Errorf("Validate = %q, %v; want unknown targt, missing target and manifest", problems, err)
	}
	problems, _ = p.Validate(ctx, sdk.NewRequest("pacs", map[string]any{"backup": "/b", "target": "/b/", "manifest": "m"}))
	if len(problems) != 1 || !strings.Contains(problems[0], "must differ") {
		t.Errorf("Validate same folders = %q", problems)
	}
	tests := []struct {
		name, content, want string
	}{
		{"bad hash", "abc  S/f\n", "is not a SHA-256"},
		{"escape", strings.Repeat("a", 64) + "  ../etc/passwd\n", "inside the backup folder"},
		{"no study", strings.Repeat("a", 64) + "  file.dcm\n", "STUDY/FILE"},
		{"duplicate", strings.Repeat("a", 64) + "  S/f\n" + strings.Repeat("b", 64) + "  S/f\n", "already listed on line 1"},
		{"empty", "# nothing\n", "lists no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m")
			mustWrite(t, path, tt.content)
			if _, err := readManifest(path); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("readManifest: err = %v, want %q", err, tt.want)
			}
		})
	}
}
