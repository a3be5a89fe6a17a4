package buildtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildSeeded builds a small command into bin/: from nothing, over an
// up-to-date binary (the copy go build starts from is kept), and over
// stale ones (another Go binary, a script), which must be rebuilt, not
// kept because a copy of them was there first.
func TestBuildSeeded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	const name = "buildtest-probe"
	Packages[name] = "./internal/buildtest/testdata/probe"
	t.Cleanup(func() { delete(Packages, name) })
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", name)
	_ = os.Remove(bin)
	t.Cleanup(func() { os.Remove(bin) })
	runs := func(when string) {
		t.Helper()
		out, err := exec.Command(bin).Output()
		if err != nil || strings.TrimSpace(string(out)) != "probe" {
			t.Fatalf("%s: bin/%s: %v, output %q", when, name, err, out)
		}
	}
	for _, when := range []string{"first build", "up-to-date build"} {
		if err := Build(name); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		runs(when)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for what, stale := range map[string][]byte{"another Go binary": other, "a script": []byte("#!/bin/sh\necho stale\n")} {
		if err := os.WriteFile(bin, stale, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Build(name); err != nil {
			t.Fatalf("build over %s: %v", what, err)
		}
		runs("build over " + what)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "bin", ".build-"+name+"-*")); len(left) != 0 {
		t.Errorf("build folders left behind: %v", left)
	}
}
