// Package buildtest builds the repository's binaries for the tests that run
// them, so that plain `go test ./...` works on a fresh clone without
// `make build` first. Binaries go where `make build` puts them, the
// repository's bin/ folder, because graph files and demo scripts name them
// there (examples/hospital/graph.yaml: ../../bin/reprise-plugin-pacs).
//
// Call Build once per test binary, from TestMain: it runs `go build` for
// each binary (quick when the build cache is warm) and renames the result
// into place, so that test packages building at the same time never see a
// half-written binary.
package buildtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Packages maps the binaries under bin/ to the packages they are built from
// (the Makefile's build target).
var Packages = map[string]string{
	"reprise":             "./cmd/reprise",
	"reprise-plugin-pacs": "./examples/vendor-plugin",
	"etcd":                "./internal/etcdmain", // make demo-cluster
}

// Root returns the repository's top folder: the first folder holding
// go.mod, from the working directory up.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = up
	}
}

// Build builds the named binaries (keys of Packages) into the repository's
// bin/ folder. The error says what failed and that `make build` is the
// way round it.
func Build(names ...string) error {
	root, err := Root()
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %v: the go command is not on PATH (run `make build` first): %w", names, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return fmt.Errorf("build %v: %w", names, err)
	}
	for _, name := range names {
		pkg, ok := Packages[name]
		if !ok {
			return fmt.Errorf("build %q: unknown binary (want one of the Makefile's)", name)
		}
		if err := build(gobin, root, name, pkg); err != nil {
			return err
		}
	}
	return nil
}

// build builds pkg into a fresh folder beside bin/NAME and renames it
// into place. The fresh folder first gets a copy of bin/NAME, if there is
// one: go build then finds its build ID up to date and skips the link,
// which is most of a build's time (tens of seconds on a loaded machine)
// and would otherwise be paid by every test binary that calls Build.
func build(gobin, root, name, pkg string) error {
	tmp, err := os.MkdirTemp(filepath.Join(root, "bin"), ".build-"+name+"-")
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, name)
	seeded := seedCopy(filepath.Join(root, "bin", name), out)
	goBuild := func() ([]byte, error) {
		cmd := exec.Command(gobin, "build", "-o", out, pkg)
		cmd.Dir = root
		return cmd.CombinedOutput()
	}
	msg, err := goBuild()
	if err != nil && seeded {
		// go build overwrites only its own kind of file: build afresh.
		os.Remove(out)
		msg, err = goBuild()
	}
	if err != nil {
		return fmt.Errorf("build %s (go build %s; or run `make build`): %w\n%s", name, pkg, err, msg)
	}
	if err := os.Rename(out, filepath.Join(root, "bin", name)); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	return nil
}

// seedCopy copies the binary at src to dst, if src exists, and reports
// whether it did; a copy that fails is removed (go build then builds dst
// from scratch).
func seedCopy(src, dst string) bool {
	in, err := os.Open(src)
	if err != nil {
		return false
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return false
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return false
	}
	return true
}
