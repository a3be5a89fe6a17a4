package sim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
)

// Outputs are KEY=VALUE results of a step; WriteOutputs hands them to reprise.
type Outputs map[string]string

// WriteOutputs appends outputs to the file named by REPRISE_OUTPUT (the exec
// plugin turns its lines into the node's outputs); without it, nothing.
func WriteOutputs(out Outputs) error {
	path := os.Getenv("REPRISE_OUTPUT")
	if path == "" || len(out) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write outputs: %w", err)
	}
	for k, v := range out {
		fmt.Fprintf(f, "%s=%s\n", k, strings.ReplaceAll(v, "\n", " "))
	}
	return f.Close()
}

// archiveHash returns the SHA-256 the backups' catalog expects for name's
// archive. The vault itself is checked against its own fingerprint file
// (kept apart, as an offline copy would be); every other archive against
// the catalog restored from the vault, which must therefore come first.
func archiveHash(env Env, file string) (string, error) {
	var manifest string
	if file == "backup-vault.tar.gz" {
		manifest = filepath.Join(env.Backups, "backup-vault.tar.gz.sha256")
	} else {
		manifest = filepath.Join(env.Data("backup-vault"), "catalog.sha256")
	}
	entries, err := archive.ReadManifest(manifest)
	if err != nil {
		return "", fmt.Errorf("backup catalog (is backup-vault restored?): %w", err)
	}
	for _, e := range entries {
		if e.Path == file {
			return e.SHA256, nil
		}
	}
	return "", fmt.Errorf("%s: not in the backup catalog %s", file, manifest)
}

// Restore restores component name from its archive into the work folder:
// archive hash against the catalog, extraction, every file against the
// archive's manifest, then the component's own check.
func Restore(w io.Writer, env Env, name string) (Outputs, error) {
	file := name + ".tar.gz"
	src := filepath.Join(env.Backups, file)
	want, err := archiveHash(env, file)
	if err != nil {
		return nil, err
	}
	got, err := archive.HashFile(src)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	if got != want {
		return nil, fmt.Errorf("restore %s: archive %s has sha256 %s, the catalog says %s: refusing a tampered or damaged backup", name, src, got, want)
	}
	fmt.Fprintf(w, "%s: archive %s matches the catalog (sha256 %s…)\n", name, src, got[:12])
	sum, err := archive.Restore(src, env.Data(name))
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	fmt.Fprintf(w, "%s: %d files, %d bytes restored into %s and verified against the manifest\n", name, sum.Files, sum.Bytes, env.Data(name))
	what, err := runCheck(env, name)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", name, err)
	}
	fmt.Fprintf(w, "%s: %s\n", name, what)
	out := Outputs{"files": fmt.Sprint(sum.Files), "bytes": fmt.Sprint(sum.Bytes), "checked": what}
	if name == "pacs" {
		// The PACS index knows where its image store lives and where the
		// vendor's backup of it is: the image restore (the vendor plugin)
		// takes these paths from here.
		for k, p := range map[string]string{
			"images_dir":      env.Data("pacs-images"),
			"images_backup":   filepath.Join(env.Backups, "pacs-images"),
			"images_manifest": filepath.Join(env.Backups, "pacs-images.sha256"),
		} {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			out[k] = abs
		}
	}
	return out, nil
}

// Verify checks an already restored component: its files against its
// manifest, then its own check. It changes nothing.
func Verify(w io.Writer, env Env, name string) error {
	sum, err := archive.VerifyRestored(env.Data(name))
	if err != nil {
		return fmt.Errorf("verify %s: %w", name, err)
	}
	what, err := runCheck(env, name)
	if err != nil {
		return fmt.Errorf("check %s: %w", name, err)
	}
	fmt.Fprintf(w, "%s: %d files verified; %s\n", name, sum.Files, what)
	return nil
}

func runCheck(env Env, name string) (string, error) {
	if c, ok := checks[name]; ok {
		return c(env)
	}
	return checkTables(name)(env)
}
