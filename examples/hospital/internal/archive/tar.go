package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// MaxFileSize bounds one file restored from an archive (the example's data
// is small; a bigger file means a corrupt or hostile archive).
const MaxFileSize = 64 << 20

// epoch is the fixed modification time written into archives, so that the
// same seed data always gives the same archive bytes and hash.
var epoch = time.Date(2022, 8, 20, 0, 0, 0, 0, time.UTC)

// Create writes a gzip-compressed tar archive at dst holding every regular
// file under srcDir plus a ManifestName listing their SHA-256. The archive is
// deterministic: sorted names, fixed times and modes. It is written to a
// temporary file and renamed into place.
func Create(dst, srcDir string) error {
	entries, err := ManifestOf(srcDir)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".archive-*")
	if err != nil {
		return fmt.Errorf("create archive %q: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	gz, _ := gzip.NewWriterLevel(tmp, gzip.DefaultCompression)
	tw := tar.NewWriter(gz)
	add := func(name string, body []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(ManifestName, FormatManifest(entries)); err != nil {
		return fmt.Errorf("create archive %q: %w", dst, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(srcDir, filepath.FromSlash(e.Path)))
		if err != nil {
			return fmt.Errorf("create archive %q: %w", dst, err)
		}
		if err := add(e.Path, body); err != nil {
			return fmt.Errorf("create archive %q: %w", dst, err)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close(), tmp.Close()); err != nil {
		return fmt.Errorf("create archive %q: %w", dst, err)
	}
	return os.Rename(tmp.Name(), dst)
}

// Extract unpacks the tar.gz archive src into dstDir, which must not exist
// yet. Only regular files and folders are accepted, with clean relative
// names; anything else (links, devices, `..`, absolute names, oversized
// files) fails the extraction.
func Extract(src, dstDir string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("archive %q: %w", src, err)
	}
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive %q: %w", src, err)
		}
		if err := checkRelPath(hdr.Name); err != nil {
			return fmt.Errorf("archive %q: %w", src, err)
		}
		target := filepath.Join(dstDir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size > MaxFileSize {
				return fmt.Errorf("archive %q: %s: %d bytes (limit %d)", src, hdr.Name, hdr.Size, MaxFileSize)
			}
			if err := writeFile(target, io.LimitReader(tr, MaxFileSize+1)); err != nil {
				return fmt.Errorf("archive %q: %s: %w", src, hdr.Name, err)
			}
		default:
			return fmt.Errorf("archive %q: %s: entry type %q refused (want regular files and folders)", src, hdr.Name, string(hdr.Typeflag))
		}
	}
}

func writeFile(target string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Restore extracts src into dstDir (replacing a previous copy atomically:
// extraction goes to a sibling temporary folder first) and verifies the
// result against the manifest carried by the archive.
func Restore(src, dstDir string) (Summary, error) {
	tmp := dstDir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return Summary{}, err
	}
	if err := Extract(src, tmp); err != nil {
		os.RemoveAll(tmp)
		return Summary{}, err
	}
	sum, err := VerifyRestored(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return sum, err
	}
	if err := os.RemoveAll(dstDir); err != nil {
		return sum, err
	}
	if err := os.Rename(tmp, dstDir); err != nil {
		return sum, err
	}
	return sum, nil
}

// VerifyRestored checks a restored folder against the ManifestName it holds.
func VerifyRestored(dir string) (Summary, error) {
	entries, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		return Summary{}, fmt.Errorf("folder %q: %w", dir, err)
	}
	if len(entries) == 0 {
		return Summary{}, fmt.Errorf("folder %q: empty manifest", dir)
	}
	return VerifyDir(dir, entries)
}
