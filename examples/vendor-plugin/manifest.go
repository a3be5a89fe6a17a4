package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// entry is one line of a manifest: a file of a study and its SHA-256.
type entry struct {
	Path   string // slash-separated, relative to the backup root: STUDY/file
	SHA256 string // lowercase hex
	Line   int
}

// Study returns the study the file belongs to: its first path element.
func (e entry) Study() string {
	s, _, _ := strings.Cut(e.Path, "/")
	return s
}

// readManifest parses a manifest in the format of `sha256sum` output:
// "<64 hex digits>  <path>" per line ("*" before the path is accepted);
// blank lines and # comments are skipped. Paths must be relative and stay
// inside the backup folder.
func readManifest(file string) ([]entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer f.Close()
	var out []entry
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, p, ok := strings.Cut(line, " ")
		p = strings.TrimPrefix(strings.TrimSpace(p), "*")
		if !ok || p == "" {
			return nil, fmt.Errorf("%s:%d: want \"<sha256>  <path>\", got %q", file, n, line)
		}
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%s:%d: %q is not a SHA-256 (64 hex digits)", file, n, sum)
		}
		clean := path.Clean(p)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || !strings.Contains(clean, "/") {
			return nil, fmt.Errorf("%s:%d: path %q must be STUDY/FILE inside the backup folder", file, n, p)
		}
		if prev, dup := seen[clean]; dup {
			return nil, fmt.Errorf("%s:%d: path %q already listed on line %d", file, n, p, prev)
		}
		seen[clean] = n
		out = append(out, entry{Path: clean, SHA256: strings.ToLower(sum), Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", file, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: manifest lists no file", file)
	}
	return out, nil
}

// hashFile returns the SHA-256 of a file and its size.
func hashFile(file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
