package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustWrite(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustSource makes a small folder to archive.
func mustSource(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "patients.csv"), "ins,family\n1,MARTIN\n")
	mustWrite(t, filepath.Join(dir, "studies", "1.2.3", "0001.dcm"), "DICM-ish")
	return dir
}

// mustTar writes a tar.gz holding the given entries as they are.
func mustTar(t *testing.T, entries []tar.Header, bodies []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for i := range entries {
		h := entries[i]
		h.Size = int64(len(bodies[i]))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(bodies[i]))
		}
	}
	tw.Close()
	gz.Close()
	f.Close()
	return path
}

func TestCreateRestoreRoundTripIsDeterministic(t *testing.T) {
	src := mustSource(t)
	out := t.TempDir()
	a, b := filepath.Join(out, "a.tar.gz"), filepath.Join(out, "b.tar.gz")
	if err := Create(a, src); err != nil {
		t.Fatal(err)
	}
	if err := Create(b, src); err != nil {
		t.Fatal(err)
	}
	ha, _ := HashFile(a)
	hb, _ := HashFile(b)
	if ha != hb {
		t.Errorf("same folder, different archives: %s vs %s", ha, hb)
	}
	sum, err := Restore(a, filepath.Join(out, "restored"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 2 {
		t.Errorf("restored %d files, want 2", sum.Files)
	}
	// Restoring again replaces the folder.
	if _, err := Restore(a, filepath.Join(out, "restored")); err != nil {
		t.Fatalf("second restore: %v", err)
	}
}

func TestVerifyDirFindsEveryProblem(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(dir string)
		want   []string
	}{
		{"intact", func(string) {}, nil},
		{"altered file", func(d string) {
			os.WriteFile(filepath.Join(d, "patients.csv"), []byte("ins,family\n1,DUPONT\n"), 0o644)
		}, []string{"patients.csv: sha256"}},
		{"missing file", func(d string) { os.Remove(filepath.Join(d, "studies", "1.2.3", "0001.dcm")) }, []string{"0001.dcm: missing"}},
		{"extra file", func(d string) { os.WriteFile(filepath.Join(d, "ransom-note.txt"), []byte("pay"), 0o644) }, []string{"ransom-note.txt: not in the manifest"}},
		{"two problems", func(d string) {
			os.Remove(filepath.Join(d, "patients.csv"))
			os.WriteFile(filepath.Join(d, "x"), nil, 0o644)
		}, []string{"patients.csv: missing", "x: not in the manifest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mustSource(t)
			arc := filepath.Join(t.TempDir(), "a.tar.gz")
			if err := Create(arc, src); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "r")
			if _, err := Restore(arc, dir); err != nil {
				t.Fatal(err)
			}
			tt.mutate(dir)
			_, err := VerifyRestored(dir)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("got %v, want ErrMismatch", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRestoreRefusesTamperedArchive(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg} }
	manifest := string(FormatManifest([]Entry{{SHA256: HashBytes([]byte("good")), Path: "data.csv"}}))
	tests := []struct {
		name    string
		headers []tar.Header
		bodies  []string
		want    string
	}{
		{"content changed after the manifest", []tar.Header{reg(ManifestName), reg("data.csv")}, []string{manifest, "evil"}, "data.csv: sha256"},
		{"file missing from the archive", []tar.Header{reg(ManifestName)}, []string{manifest}, "data.csv: missing"},
		{"no manifest", []tar.Header{reg("data.csv")}, []string{"good"}, ManifestName},
		{"path escape", []tar.Header{reg("../evil")}, []string{"x"}, "unsafe path"},
		{"absolute path", []tar.Header{reg("/etc/evil")}, []string{"x"}, "unsafe path"},
		{"symlink", []tar.Header{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, []string{""}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arc := mustTar(t, tt.headers, tt.bodies)
			dst := filepath.Join(t.TempDir(), "r")
			_, err := Restore(arc, dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if _, statErr := os.Stat(dst); statErr == nil {
				t.Errorf("a failed restore left %s behind", dst)
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	good := strings.Repeat("a", 64)
	tests := []struct{ name, in, want string }{
		{"short hash", "abc  x\n", "want `sha256  path`"},
		{"one space", good + " x\n", "want `sha256  path`"},
		{"uppercase", strings.Repeat("A", 64) + "  x\n", "want `sha256  path`"},
		{"dot dot", good + "  ../x\n", "unsafe path"},
		{"duplicate", good + "  x\n" + good + "  x\n", "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest("m", strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	entries, err := ParseManifest("m", strings.NewReader("# comment\n\n"+good+"  a/b.csv\n"))
	if err != nil || len(entries) != 1 || entries[0].Path != "a/b.csv" {
		t.Fatalf("got %v, %v", entries, err)
	}
}
