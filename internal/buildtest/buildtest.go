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
// into place.
func build(gobin, root, name, pkg string) error {
	tmp, err := os.MkdirTemp(filepath.Join(root, "bin"), ".build-"+name+"-")
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(tmp, name), pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s (go build %s; or run `make build`): %w\n%s", name, pkg, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, name), filepath.Join(root, "bin", name)); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	return nil
}
