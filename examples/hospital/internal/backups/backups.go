// Package backups builds the hospital example's "backups" from its seed data.
package backups

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
	"github.com/reprise-si/reprise/examples/hospital/internal/sim"
)

// Build (re)builds the backups folder out from the seed folder: one
// deterministic tar.gz per component with its manifest inside, the PACS
// images as files plus a manifest, a PKI (kept from a previous build when
// there is one), and the vault: the catalog of every backup's SHA-256 with
// its own fingerprint beside it. The set is built in OUT.new and swapped in.
func Build(seed, out string) error {
	entries, err := os.ReadDir(seed)
	if err != nil {
		return err
	}
	tmp := out + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var catalog []archive.Entry
	addArchive := func(name, dir string) error {
		file := name + ".tar.gz"
		if err := archive.Create(filepath.Join(tmp, file), dir); err != nil {
			return err
		}
		h, err := archive.HashFile(filepath.Join(tmp, file))
		if err != nil {
			return err
		}
		catalog = append(catalog, archive.Entry{SHA256: h, Path: file})
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || name == "paper" || strings.HasPrefix(name, ".") {
			continue // paper records are not backups: they are typed back in
		}
		if name == "pacs-images" {
			if err := pacsBackup(filepath.Join(seed, name), tmp, &catalog); err != nil {
				return err
			}
			continue
		}
		if err := addArchive(name, filepath.Join(seed, name)); err != nil {
			return err
		}
	}
	if err := pkiBackup(out, tmp, addArchive); err != nil {
		return err
	}
	// The vault: the catalog of every other backup, itself fingerprinted
	// in a file kept beside it (the offline copy's label).
	vault, err := os.MkdirTemp("", "vault-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(vault)
	sort.Slice(catalog, func(i, j int) bool { return catalog[i].Path < catalog[j].Path })
	if err := os.WriteFile(filepath.Join(vault, "catalog.sha256"), archive.FormatManifest(catalog), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vault, "retention.conf"), []byte("copies=3\noffline=1\nimmutable_days=30\n"), 0o644); err != nil {
		return err
	}
	if err := archive.Create(filepath.Join(tmp, "backup-vault.tar.gz"), vault); err != nil {
		return err
	}
	h, err := archive.HashFile(filepath.Join(tmp, "backup-vault.tar.gz"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "backup-vault.tar.gz.sha256"), archive.FormatManifest([]archive.Entry{{SHA256: h, Path: "backup-vault.tar.gz"}}), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	return nil
}

// pacsBackup copies the imaging studies as files and writes their manifest
// (the format the example vendor plugin reads), listed in the catalog.
func pacsBackup(src, tmp string, catalog *[]archive.Entry) error {
	dst := filepath.Join(tmp, "pacs-images")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return copyFile(p, filepath.Join(dst, rel))
	})
	if err != nil {
		return err
	}
	entries, err := archive.ManifestOf(dst)
	if err != nil {
		return err
	}
	manifest := filepath.Join(tmp, "pacs-images.sha256")
	if err := os.WriteFile(manifest, archive.FormatManifest(entries), 0o644); err != nil {
		return err
	}
	h, err := archive.HashFile(manifest)
	if err != nil {
		return err
	}
	*catalog = append(*catalog, archive.Entry{SHA256: h, Path: "pacs-images.sha256"})
	return nil
}

// pkiBackup keeps the previous PKI archive when there is one (keys are
// random: regenerating would change the backups at every run).
func pkiBackup(out, tmp string, addArchive func(name, dir string) error) error {
	prev := filepath.Join(out, "pki.tar.gz")
	if _, err := os.Stat(prev); err == nil {
		dir, err := os.MkdirTemp("", "pki-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if _, err := archive.Restore(prev, filepath.Join(dir, "pki")); err == nil {
			os.Remove(filepath.Join(dir, "pki", archive.ManifestName))
			return addArchive("pki", filepath.Join(dir, "pki"))
		}
	}
	dir, err := os.MkdirTemp("", "pki-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := sim.GeneratePKI(dir); err != nil {
		return fmt.Errorf("generate pki: %w", err)
	}
	return addArchive("pki", dir)
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	outf, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(outf, in); err != nil {
		outf.Close()
		return err
	}
	return outf.Close()
}
