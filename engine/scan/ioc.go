package scan

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strings"
)

// loadHashList reads one hash list, calling add for each SHA-256.
func loadHashList(file string, add func([32]byte)) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%w: hash list: %w", ErrBadSpec, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if text == "" || text[0] == '#' {
			continue
		}
		field := text
		if i := strings.IndexAny(text, " \t,;"); i >= 0 {
			field = text[:i]
		}
		field = strings.ToLower(field)
		var h [32]byte
		switch n, err := hex.Decode(h[:], []byte(field)); {
		case err == nil && n == 32 && len(field) == 64:
			add(h)
		case isHex(field) && (len(field) == 32 || len(field) == 40):
			// MD5 or SHA-1 of a mixed feed: not ours to check.
		default:
			return fmt.Errorf("%w: hash list %s:%d: bad hash %q (want 64 hex digits of a SHA-256, one a line)", ErrBadSpec, file, line, shorten(field))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: hash list %s:%d: %w", ErrBadSpec, file, line+1, err)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func shorten(s string) string {
	if len(s) > 72 {
		return s[:72] + "…"
	}
	return s
}

// matchName returns the first of patterns that the base name matches,
// case-insensitively, or "".
func matchName(patterns []string, base string) string {
	lb := strings.ToLower(base)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), lb); ok {
			return p
		}
	}
	return ""
}
