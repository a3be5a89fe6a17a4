package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/plugins/python"
)

// skeletons holds the files `reprise plugins new` writes, by language.
//
//go:embed skeleton
var skeletons embed.FS

// sdkModule is the module path of reprise, whose plugins/sdk Go plugins import.
const sdkModule = "github.com/reprise-si/reprise"

var pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// skeletonData fills the skeleton's templates.
type skeletonData struct {
	Name      string // the plugin's name in graphs ("lab")
	Binary    string // reprise-plugin-NAME
	Module    string // the Go module path
	GoVersion string // the go directive of reprise's go.mod
	SDKDir    string // the reprise checkout the Go module builds against
}

func newPluginsNewCmd() *cobra.Command {
	var opts pluginsNewOptions
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Write the skeleton of a new plugin (Go or Python) that builds and passes its test",
		Long: `Write the skeleton of a new vendor plugin into its own folder
(--dir, default ./reprise-plugin-NAME): for Go (--lang go) a module with
main.go, plugin.go, plugin_test.go, README.md and a go.mod that builds
against a checkout of reprise (--sdk, default: the checkout holding the
current folder); for Python (--lang python) the plugin, plugin.py,
test_plugin.py, README.md and the contract's Python code. As written, the
plugin restores one file and checks its SHA-256, and its test passes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			dir, err := runPluginsNew(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s plugin %q in %s: see its README.md\n", opts.Lang, opts.Name, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Lang, "lang", "go", "the plugin's language: go or python")
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "folder to write (default ./reprise-plugin-NAME; must not exist or be empty)")
	cmd.Flags().StringVar(&opts.Module, "module", "", "Go module path (default example.com/reprise-plugin-NAME)")
	cmd.Flags().StringVar(&opts.SDK, "sdk", "", "a checkout of reprise to build against (default: the one holding the current folder)")
	return cmd
}

// pluginsNewOptions are the options of `reprise plugins new NAME`.
type pluginsNewOptions struct {
	// Name is the plugin's name in graphs.
	Name string
	// Lang is go or python.
	Lang string
	// Dir is the folder to write ("": ./reprise-plugin-NAME); it must not
	// exist or be empty.
	Dir string
	// Module is the Go module path ("": example.com/reprise-plugin-NAME).
	Module string
	// SDK is the reprise checkout a Go plugin builds against ("": the one
	// holding the current folder).
	SDK string
}

// runPluginsNew writes the skeleton of plugin opts.Name and returns the
// folder it wrote. A bad name or language is a usage error.
func runPluginsNew(_ context.Context, opts pluginsNewOptions) (string, error) {
	name := opts.Name
	if !pluginNameRE.MatchString(name) {
		return "", usageError("plugin name %q: want lowercase letters, digits and '-', starting with a letter", name)
	}
	if graphs.IsBuiltin(name) {
		return "", usageError("plugin name %q: a built-in plugin has that name (%s)", name, strings.Join(graphs.BuiltinPlugins, ", "))
	}
	data := skeletonData{Name: name, Binary: "reprise-plugin-" + name, Module: opts.Module}
	dir := opts.Dir
	if dir == "" {
		dir = data.Binary
	}
	if data.Module == "" {
		data.Module = "example.com/" + data.Binary
	}
	var files map[string][]byte
	var err error
	switch opts.Lang {
	case "go":
		if data.SDKDir, data.GoVersion, err = findSDK(opts.SDK); err != nil {
			return "", withCode(exitError, err)
		}
		files, err = renderSkeleton("go", data, map[string]string{"main.tmpl": "", "go.mod.tmpl": "go.mod"})
	case "python":
		files, err = pythonSkeleton(data)
	default:
		return "", usageError("--lang %q: want go or python", opts.Lang)
	}
	if err != nil {
		return "", withCode(exitError, err)
	}
	if err := writeSkeleton(dir, files); err != nil {
		return "", withCode(exitError, err)
	}
	return dir, nil
}

// findSDK returns the absolute path of the reprise checkout at dir (or, when
// dir is empty, the one holding the current folder) and its go version.
func findSDK(dir string) (string, string, error) {
	start := dir
	if start == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", "", err
		}
		start = wd
	}
	abs, err := filepath.Abs(start)
	if err != nil {
		return "", "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if goVersion, ok := readGoMod(filepath.Join(d, "go.mod")); ok {
			return d, goVersion, nil
		}
		if dir != "" || filepath.Dir(d) == d {
			break
		}
	}
	if dir != "" {
		return "", "", fmt.Errorf("--sdk %s: not a checkout of reprise (no go.mod of module %s there)", dir, sdkModule)
	}
	return "", "", fmt.Errorf("no checkout of reprise holds %s: give one with --sdk PATH (reprise's module path cannot be fetched from a module proxy)", abs)
}

// readGoMod reports whether the go.mod file at p is reprise's, and its go
// version.
func readGoMod(p string) (string, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	module, goVersion := "", "1.24"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			module = strings.Trim(f[1], `"`)
		}
		if len(f) == 2 && f[0] == "go" {
			goVersion = f[1]
		}
	}
	return goVersion, module == sdkModule
}

// renderSkeleton renders the templates of skeleton/LANG; renames maps a
// template's name to its file's name ("": the binary's name), otherwise the
// ".tmpl" suffix is dropped.
func renderSkeleton(lang string, data skeletonData, renames map[string]string) (map[string][]byte, error) {
	root := "skeleton/" + lang
	entries, err := skeletons.ReadDir(root)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		src, err := skeletons.ReadFile(path.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(e.Name()).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("skeleton %s: %w", e.Name(), err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("skeleton %s: %w", e.Name(), err)
		}
		name, ok := renames[e.Name()]
		switch {
		case ok && name == "":
			name = data.Binary
		case !ok:
			name = strings.TrimSuffix(e.Name(), ".tmpl")
		}
		files[name] = b.Bytes()
	}
	return files, nil
}

// pythonSkeleton is the Python plugin's files plus the contract's Python
// code from plugins/python.
func pythonSkeleton(data skeletonData) (map[string][]byte, error) {
	files, err := renderSkeleton("python", data, map[string]string{"main.tmpl": ""})
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(python.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := python.Files.ReadFile(p)
		files[p] = b
		return err
	})
	return files, err
}

// writeSkeleton writes files under dir, which must not exist or be empty.
// The plugin's binary (reprise-plugin-*) is made executable.
func writeSkeleton(dir string, files map[string][]byte) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: choose another --dir", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(path.Base(name), "reprise-plugin-") {
			mode = 0o755
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}
