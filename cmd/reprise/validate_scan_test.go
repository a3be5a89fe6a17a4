package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateScanners: validate loads the declared scanners, and names the
// scanner's line, the problem and how to install a missing command.
func TestValidateScanners(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("iocs.txt", strings.Repeat("ab", 32)+"\nnot-a-hash\n")
	write("web.yar", "rule web { strings: $a = \"eval(\" condition: $a }\n")
	graph := write("g.yaml", `version: 1
scanners:
  iocs: {type: ioc, hash_lists: [iocs.txt]}
  webshells: {type: yara, rules: [web.yar]}
nodes:
  - {id: a, kind: data, plugin: noop, scan: [iocs, webshells], restore_points: [{id: p1, time: '2026-11-30T01:00:00Z', path: p1}]}
`)
	_, stderr, code := runGraphsCmd(t, "validate", graph)
	want := graph + `:3:3: scanner "iocs": bad scanner: hash list ` + filepath.Join(dir, "iocs.txt") + `:2: bad hash "not-a-hash"`
	if code != 1 || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("code %d stderr %q, want %q…", code, stderr, want)
	}
	t.Setenv("PATH", t.TempDir())
	write("iocs.txt", strings.Repeat("ab", 32)+"\n")
	_, stderr, code = runGraphsCmd(t, "validate", graph)
	want = graph + `:4:3: scanner "webshells": scanner command not found: yara is not on PATH (install Debian's yara package: apt-get install yara)` + "\n"
	if code != 1 || stderr != want {
		t.Fatalf("code %d stderr %q, want %q", code, stderr, want)
	}
}
