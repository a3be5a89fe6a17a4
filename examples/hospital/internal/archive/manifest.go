// Package archive builds and restores the hospital example's backups:
// deterministic tar.gz archives that carry a SHA-256 manifest of their files
// (MANIFEST.sha256, in the `sha256sum` format), and checks a restored folder
// against such a manifest. Any missing, extra or altered file is an error.
package archive

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ManifestName is the manifest file inside every archive and restored folder.
const ManifestName = "MANIFEST.sha256"

// Entry is one manifest line: the SHA-256 of a file and its slash-separated
// path relative to the folder the manifest describes.
type Entry struct {
	SHA256 string
	Path   string
}

// ErrMismatch is returned (wrapped) when a restored folder differs from its
// manifest: a file missing, added or altered.
var ErrMismatch = errors.New("does not match its manifest")

// HashFile returns the lowercase hex SHA-256 of the file at name.
func HashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %q: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashBytes returns the lowercase hex SHA-256 of b.
func HashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// FormatManifest renders entries sorted by path, one `sha256  path` a line.
func FormatManifest(entries []Entry) []byte {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b strings.Builder
	for _, e := range sorted {
		fmt.Fprintf(&b, "%s  %s\n", e.SHA256, e.Path)
	}
	return []byte(b.String())
}

// ParseManifest reads `sha256  path` lines; blank lines and lines starting
// with # are skipped. A malformed line, an unsafe path or a duplicate path
// is an error naming the line.
func ParseManifest(name string, r io.Reader) ([]Entry, error) {
	var out []Entry
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		sum, p, ok := strings.Cut(text, "  ")
		if !ok || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%s:%d: want `sha256  path` (64 lowercase hex digits, two spaces), got %q", name, line, text)
		}
		if err := checkRelPath(p); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("%s:%d: path %q listed twice", name, line, p)
		}
		seen[p] = true
		out = append(out, Entry{SHA256: sum, Path: p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read manifest %q: %w", name, err)
	}
	return out, nil
}

// ReadManifest parses the manifest file at name.
func ReadManifest(name string) ([]Entry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseManifest(name, f)
}

// checkRelPath refuses absolute paths, `..` and other names that could
// escape the folder a manifest or an archive describes.
func checkRelPath(p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, "\\") || path.Clean(p) != p ||
		p == ".." || strings.HasPrefix(p, "../") || p == "." {
		return fmt.Errorf("unsafe path %q (want a clean relative path inside the folder)", p)
	}
	return nil
}

// Summary counts what a verification looked at.
type Summary struct {
	Files int
	Bytes int64
}

// VerifyDir checks dir against entries: every listed file must exist with the
// listed hash and no other regular file may be present (the manifest file
// itself, at the top, is ignored). Every problem is reported at once.
func VerifyDir(dir string, entries []Entry) (Summary, error) {
	return VerifyDirSkipping(dir, entries, nil)
}

// VerifyDirSkipping is VerifyDir, except that files not in the manifest for
// which skip returns true are not problems (skip gets the slash-separated
// relative path).
func VerifyDirSkipping(dir string, entries []Entry, skip func(rel string) bool) (Summary, error) {
	var sum Summary
	var problems []error
	want := make(map[string]bool, len(entries))
	for _, e := range entries {
		want[e.Path] = true
		full := filepath.Join(dir, filepath.FromSlash(e.Path))
		got, err := HashFile(full)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, fmt.Errorf("%s: missing", e.Path))
			continue
		case err != nil:
			problems = append(problems, fmt.Errorf("%s: %w", e.Path, err))
			continue
		case got != e.SHA256:
			problems = append(problems, fmt.Errorf("%s: sha256 %s, manifest says %s", e.Path, got, e.SHA256))
			continue
		}
		st, err := os.Stat(full)
		if err == nil {
			sum.Bytes += st.Size()
		}
		sum.Files++
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel != ManifestName && !want[rel] && (skip == nil || !skip(rel)) {
			problems = append(problems, fmt.Errorf("%s: not in the manifest", rel))
		}
		return nil
	})
	if err != nil {
		problems = append(problems, fmt.Errorf("walk %q: %w", dir, err))
	}
	if len(problems) > 0 {
		return sum, fmt.Errorf("folder %q %w: %w", dir, ErrMismatch, errors.Join(problems...))
	}
	return sum, nil
}

// ManifestOf hashes every regular file under dir (except a top-level
// ManifestName) and returns the entries sorted by path.
func ManifestOf(dir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == ManifestName {
			return nil
		}
		h, err := HashFile(p)
		if err != nil {
			return err
		}
		out = append(out, Entry{SHA256: h, Path: rel})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest of %q: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
