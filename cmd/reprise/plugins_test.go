package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/engine/host"
)

func TestCLIPlugins(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	if err := os.Chmod(d.write("changed-plugin", "#!/bin/sh\necho not the pinned binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	g := d.write("graph.yaml", `version: 1
name: plugins
plugins:
  lab-vendor: {path: bin/missing-plugin}
  pharmacy: {path: changed-plugin, sha256: "`+strings.Repeat("ab", 32)+`"}
nodes:
  - {id: ad, kind: infrastructure, plugin: exec, with: {restore: ["true"]}}
  - {id: milestone, kind: application, plugin: noop, depends_on: [ad]}
  - {id: lis, kind: application, plugin: lab-vendor, depends_on: [ad]}
  - {id: pharma, kind: application, plugin: pharmacy, depends_on: [ad]}
  - {id: web, kind: application, plugin: http, depends_on: [ad], with: {url: "ftp://x"}}
`)
	out, errs, code := d.run("plugins", "--json", g)
	if code != exitError {
		t.Fatalf("exit %d, want %d (a plugin is missing)\n%s\n%s", code, exitError, out, errs)
	}
	var reports []host.PluginReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	byName := map[string]host.PluginReport{}
	for _, r := range reports {
		byName[r.Name] = r
	}
	if len(reports) != 5 || reports[0].Name != "exec" || reports[1].Name != "http" {
		t.Fatalf("plugins = %v, want exec, http, lab-vendor, noop, pharmacy in order", reports)
	}
	if p := byName["http"].Problems; len(p) != 1 || !strings.HasPrefix(p[0], `node "web": with.url: not an http or https URL`) {
		t.Errorf("http problems = %q", p)
	}
	if p := byName["exec"].Problems; len(p) != 0 {
		t.Errorf("exec problems = %q, want none", p)
	}
	tests := []struct {
		name, checksum, errText, describe string
		builtin                           bool
	}{
		{name: "exec", checksum: "built in", describe: "exec", builtin: true},
		{name: "noop", checksum: "built in", describe: "noop", builtin: true},
		{name: "lab-vendor", checksum: "unreadable", errText: "binary not found"},
		{name: "pharmacy", checksum: "differs", errText: "binary checksum mismatch: expected sha256 abab"},
	}
	for _, tt := range tests {
		r := byName[tt.name]
		if r.Builtin != tt.builtin || r.Checksum != tt.checksum || !strings.Contains(r.Error, tt.errText) ||
			(tt.errText == "" && r.Error != "") {
			t.Errorf("%s: %+v, want checksum %q, error with %q", tt.name, r, tt.checksum, tt.errText)
		}
		if tt.describe != "" && (r.Describe == nil || r.Describe.Name != tt.describe || len(r.Describe.Fields) == 0) {
			t.Errorf("%s: describe = %+v", tt.name, r.Describe)
		}
		if r.Resolved == "" || !strings.HasPrefix(r.Resolved, "/") {
			t.Errorf("%s: resolved %q, want an absolute path", tt.name, r.Resolved)
		}
	}
	if p := byName["pharmacy"]; p.Actual == "" || p.Actual == p.SHA256 || len(p.Nodes) != 1 || p.Nodes[0] != "pharma" {
		t.Errorf("pharmacy: %+v", p)
	}

	g2 := d.write("builtins.yaml", `version: 1
name: builtins
nodes:
  - {id: gate, kind: data, plugin: manual}
`)
	text := d.mustRun(0, "plugins", g2)
	for _, want := range []string{"manual (built in, 1 node)", "plugin:  manual ", "message (string)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestCLIPluginServe(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown built-in", []string{"plugin-serve", "ssh"}, exitUsage, `unknown built-in plugin "ssh" (want exec, http, manual, noop)`},
		{"run by hand", []string{"plugin-serve", "noop"}, exitError, "This binary is a plugin"},
		{"no name", []string{"plugin-serve"}, exitUsage, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := d.run(tt.args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tt.wantCode, tt.wantErr)
			}
		})
	}
}
