package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// mustBuild builds this plugin into a temporary folder and returns the
// binary's path.
func mustBuild(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "reprise-plugin-pacs")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEndToEnd drives the built plugin through the real plugin host, as a
// graph declaring `plugins: {pacs-vendor: {path: …, sha256: …}}` would.
func TestEndToEnd(t *testing.T) {
	bin := mustBuild(t)
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	a := mustArchive(t)
	h := host.New(host.Options{
		Plugins:  map[string]graphs.PluginRef{"pacs-vendor": {Path: bin, SHA256: sum}},
		GraphDir: a.dir,
	})
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	info, err := h.Describe(ctx, "pacs-vendor")
	if err != nil || info.Name != "pacs" || info.Version != Version || len(info.Fields) != 3 {
		t.Fatalf("Describe = %+v, %v", info, err)
	}
	req := step.Request{RunID: "r1", NodeID: "pacs-archive", Kind: graphs.KindData, Plugin: "pacs-vendor",
		Attempt: 1, WorkDir: a.dir, Mode: step.ModeNormal,
		Config: map[string]any{"backup": "backup", "target": "pacs", "manifest": "backup.sha256"}}
	if problems, err := h.Validate(ctx, req); err != nil || len(problems) != 0 {
		t.Fatalf("Validate = %q, %v", problems, err)
	}
	var progress []float64
	res, err := h.Restore(ctx, req, func(e step.Event) {
		if e.Kind == step.EventProgress {
			progress = append(progress, e.Percent)
		}
	})
	if err != nil || res.Status != step.Succeeded {
		t.Fatalf("Restore = %+v, %v", res, err)
	}
	if res.Outputs["studies"] != "2" || res.Outputs["files"] != "3" || res.Outputs["bytes"] != "48" {
		t.Errorf("outputs = %v", res.Outputs)
	}
	if len(progress) != 3 || progress[2] != 100 {
		t.Errorf("progress = %v", progress)
	}
	if c, err := h.Check(ctx, req); err != nil || !c.Restored {
		t.Errorf("Check = %+v, %v", c, err)
	}
	if v, err := h.Verify(ctx, req); err != nil || v.Status != step.Succeeded {
		t.Errorf("Verify = %+v, %v", v, err)
	}
	h.Close()

	// The binary changes after pinning: the host refuses it.
	f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	h2 := host.New(host.Options{Plugins: map[string]graphs.PluginRef{"pacs-vendor": {Path: bin, SHA256: sum}}})
	defer h2.Close()
	if _, err := h2.Describe(ctx, "pacs-vendor"); !errors.Is(err, host.ErrChecksum) {
		t.Errorf("tampered binary: err = %v, want ErrChecksum", err)
	}
}
