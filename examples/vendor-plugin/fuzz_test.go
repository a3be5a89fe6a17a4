package main

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadManifest checks that no manifest makes the parser panic, and that
// every path it accepts stays inside the backup folder.
func FuzzReadManifest(f *testing.F) {
	h := strings.Repeat("a", 64)
	for _, seed := range []string{
		h + "  CT-1/slice.dcm\n", h + " *MR/x.dcm\n# c\n\n", h + "  ../etc/passwd\n", h + "  /abs/x\n",
		"zz  S/f\n", h + "  S/./../../x\n", h + "  S//f\n" + h + "  S/f\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		file := filepath.Join(dir, "m")
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		entries, err := readManifest(file)
		if err != nil {
			return
		}
		for _, e := range entries {
			if path.IsAbs(e.Path) || e.Path == ".." || strings.HasPrefix(e.Path, "../") || e.Study() == e.Path {
				t.Fatalf("accepted path %q escapes the backup folder or has no study", e.Path)
			}
			if len(e.SHA256) != 64 {
				t.Fatalf("accepted hash %q", e.SHA256)
			}
		}
	})
}
