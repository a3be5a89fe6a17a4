package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goIn runs the go command in dir as a vendor outside reprise's tree would
// (GOFLAGS=-mod=mod fills go.sum from the module cache or proxy; no
// workspace) and fails the test if it fails.
func goIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// pluginGraph writes a graph whose node "lab-db" restores backup.dat with
// the plugin at bin, and whose node "lab-app" gets its verified hash.
func pluginGraph(d *cliDir, bin string) string {
	d.write("backup.dat", "the backed-up data\n")
	return d.write("graph.yaml", `version: 1
name: out-of-tree
plugins:
  lab: { path: `+bin+` }
nodes:
  - id: lab-db
    kind: data
    plugin: lab
    with: { source: backup.dat, target: restored.dat }
  - id: lab-app
    kind: application
    plugin: exec
    depends_on: [lab-db]
    with: { restore: [sh, -c, 'echo "$0" > app.txt', "${nodes.lab-db.outputs.verified_sha256}"] }
`)
}

// checkRestored checks what a run of pluginGraph left.
func checkRestored(t *testing.T, d *cliDir) {
	t.Helper()
	if got := fileText(d, "restored.dat"); got != "the backed-up data\n" {
		t.Errorf("restored.dat = %q", got)
	}
	// sha256 of "the backed-up data\n"
	if got := fileText(d, "app.txt"); len(strings.TrimSpace(got)) != 64 {
		t.Errorf("lab-app was given %q, want the 64-digit hash Verify set", got)
	}
}

// TestPluginsNewGoOutOfTree is the recipe for a vendor's Go plugin: `reprise
// plugins new` writes a module in a folder outside reprise's tree whose
// go.mod replaces reprise's module path by this checkout; it vets, passes
// its own test (which drives it through the plugin host) and builds with
// GOFLAGS=-mod=mod, and `reprise run` restores a node with it.
func TestPluginsNewGoOutOfTree(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a plugin module")
	}
	d := newCLIDir(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mod := d.path("lab")
	d.mustRun(0, "plugins", "new", "lab", "--dir", mod, "--sdk", root)
	for _, f := range []string{"go.mod", "main.go", "plugin.go", "plugin_test.go", "README.md"} {
		if _, err := os.Stat(filepath.Join(mod, f)); err != nil {
			t.Errorf("plugins new wrote no %s: %v", f, err)
		}
	}
	if gomod := fileText(d, "lab/go.mod"); !strings.Contains(gomod, "replace github.com/reprise-si/reprise => "+root) {
		t.Errorf("go.mod has no replace to the checkout:\n%s", gomod)
	}
	goIn(t, mod, "vet", "./...")
	goIn(t, mod, "test", "-count=1", "./...")
	bin := filepath.Join(mod, "reprise-plugin-lab")
	goIn(t, mod, "build", "-o", bin, ".")

	d.mustRun(0, "run", pluginGraph(d, bin))
	checkRestored(t, d)
}

// TestPluginsNewPython: the Python skeleton passes its own tests as written
// and restores a node through `reprise run` (AutoMTLS, Restore, Verify's
// outputs to a dependent).
func TestPluginsNewPython(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a Python plugin")
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Fatalf("needs Debian's python3-grpcio, python3-protobuf, python3-cryptography (.ci/run installs them): %v\n%s", err, out)
	}
	d := newCLIDir(t)
	dir := d.path("pylab")
	d.mustRun(0, "plugins", "new", "lab", "--lang", "python", "--dir", dir)
	cmd := exec.Command("/usr/bin/python3", "-m", "unittest", "-v")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("the skeleton's tests: %v\n%s", err, out)
	}
	d.mustRun(0, "run", pluginGraph(d, filepath.Join(dir, "reprise-plugin-lab")))
	checkRestored(t, d)
	if _, err := os.Stat(filepath.Join(dir, "__pycache__")); err == nil {
		t.Errorf("the plugin left a __pycache__ beside itself")
	}
}

// TestPluginsNewRefuses: bad names, a built-in's name, an unknown language,
// a folder in use and a missing reprise checkout are refused.
func TestPluginsNewRefuses(t *testing.T) {
	t.Parallel()
	d := newCLIDir(t)
	if err := os.Mkdir(d.path("taken"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.write("taken/file", "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad name", []string{"Lab_1"}, exitUsage, `plugin name "Lab_1": want lowercase letters`},
		{"built-in name", []string{"exec"}, exitUsage, "a built-in plugin has that name"},
		{"language", []string{"lab", "--lang", "cobol"}, exitUsage, `--lang "cobol": want go or python`},
		{"folder in use", []string{"lab", "--lang", "python", "--dir", d.path("taken")}, exitError, "is not empty"},
		{"no checkout", []string{"lab", "--dir", d.path("x")}, exitError, "give one with --sdk PATH"},
		{"not a checkout", []string{"lab", "--dir", d.path("x"), "--sdk", d.dir}, exitError, "not a checkout of reprise"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := d.run(append([]string{"plugins", "new"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, want %d and %q in:\n%s", code, tt.code, tt.want, errs)
			}
		})
	}
}
