package scan

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mustWrite writes a file under dir, making its folders.
func mustWrite(t testing.TB, dir, rel string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func text(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "patient %d admitted to ward %d, lab result %d mmol/L\n", i, i%17, i*7%300)
	}
	return b.Bytes()[:n]
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustCompile(t testing.TB, specs ...Spec) *Set {
	t.Helper()
	s, err := Compile(context.Background(), specs, Options{})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func mustScan(t testing.TB, s *Set, root string, names ...string) Result {
	t.Helper()
	r, err := s.Scan(context.Background(), root, names...)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return r
}

func TestEntropyVerdicts(t *testing.T) {
	ent := Spec{Name: "ent", Type: TypeEntropy, Threshold: 0.25}
	tests := []struct {
		name  string
		files map[string][]byte
		want  Verdict
		enc   int // findings
	}{
		{"text", map[string][]byte{"a.txt": text(5000), "b/c.csv": text(70000)}, Clean, 0},
		{"gzip of random bytes is explained", map[string][]byte{"a.gz": gzipped(t, randomBytes(t, 50000)), "b.txt": text(3000)}, Clean, 0},
		{"small random file is not examined", map[string][]byte{"key": randomBytes(t, 500), "b.txt": text(3000)}, Clean, 0},
		{"one random file among many is suspicious", map[string][]byte{
			"x.bin": randomBytes(t, 8000), "1.txt": text(2000), "2.txt": text(2000), "3.txt": text(2000),
			"4.txt": text(2000), "5.txt": text(2000)}, Suspicious, 1},
		{"mostly random is encrypted", map[string][]byte{
			"a.docx.locked": randomBytes(t, 8000), "b.xlsx.locked": randomBytes(t, 100000), "c.txt": text(2000)}, Encrypted, 2},
	}
	s := mustCompile(t, ent)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for rel, data := range tc.files {
				mustWrite(t, dir, rel, data)
			}
			r := mustScan(t, s, dir)
			if r.Verdict != tc.want || len(r.Findings) != tc.enc {
				t.Fatalf("verdict %s with %d findings %+v, want %s with %d", r.Verdict, len(r.Findings), r.Findings, tc.want, tc.enc)
			}
			if r.Files != int64(len(tc.files)) {
				t.Errorf("files %d, want %d", r.Files, len(tc.files))
			}
			for _, f := range r.Findings {
				if f.Scanner != "ent" || f.Rule != "entropy" || f.Verdict != tc.want {
					t.Errorf("finding %+v", f)
				}
			}
		})
	}
}

func TestEntropyOfKnownInputs(t *testing.T) {
	if e := entropy(bytes.Repeat([]byte{7}, 4096)); e != 0 {
		t.Errorf("constant: %v, want 0", e)
	}
	all := make([]byte, 256*16)
	for i := range all {
		all[i] = byte(i)
	}
	if e := entropy(all); e < 7.999 || e > 8.001 {
		t.Errorf("uniform: %v, want 8", e)
	}
	if e := entropy(text(8000)); e > 5.5 {
		t.Errorf("text: %v, want < 5.5", e)
	}
	if f := knownFormat(gzipped(t, []byte("x"))); f != "gzip" {
		t.Errorf("gzip magic: %q", f)
	}
	dicom := append(make([]byte, 128), []byte("DICM")...)
	if f := knownFormat(dicom); f != "dicom" {
		t.Errorf("dicom magic: %q", f)
	}
}

func TestIOC(t *testing.T) {
	dir := t.TempDir()
	bad := []byte("powershell -enc SQBFAFgA implant\n")
	sum := sha256.Sum256(bad)
	badHex := hex.EncodeToString(sum[:])
	lists := t.TempDir()
	list := mustWrite(t, lists, "cert-feed.txt", []byte("# CERT feed\n\n"+strings.ToUpper(badHex)+"  implant.ps1\n"+
		"d41d8cd98f00b204e9800998ecf8427e\n"+ // an MD5 line, ignored
		hex.EncodeToString(make([]byte, 32))+"\n"))
	mustWrite(t, dir, "users/alice/tasks/update.ps1", bad)
	mustWrite(t, dir, "users/alice/report.txt", text(3000))
	big := append(text(300000), bad...) // spans many reads, not on the list
	mustWrite(t, dir, "big.log", big)
	// A link to a listed file outside the point is neither followed nor read.
	outside := mustWrite(t, t.TempDir(), "x.ps1", bad)
	if err := os.Symlink(outside, filepath.Join(dir, "link.ps1")); err != nil {
		t.Fatal(err)
	}
	s := mustCompile(t, Spec{Name: "cert", Type: TypeIOC, HashLists: []string{list}},
		Spec{Name: "notes", Type: TypeIOC, Names: []string{"*README*DECRYPT*", "*.lockbit"}})
	r := mustScan(t, s, dir)
	if r.Verdict != Compromised || len(r.Findings) != 1 {
		t.Fatalf("got %s %+v, want compromised with one finding", r.Verdict, r.Findings)
	}
	f := r.Findings[0]
	if f.File != "users/alice/tasks/update.ps1" || f.Rule != badHex || f.Scanner != "cert" || f.Type != TypeIOC {
		t.Errorf("finding %+v", f)
	}
	if r.Files != 3 || r.Bytes != int64(len(bad)+3000+len(big)) {
		t.Errorf("files %d bytes %d", r.Files, r.Bytes)
	}

	mustWrite(t, dir, "share/HOW_TO_README_DECRYPT.html", []byte("pay"))
	r = mustScan(t, s, dir, "notes")
	if r.Verdict != Encrypted || len(r.Findings) != 1 || r.Findings[0].Rule != "*README*DECRYPT*" {
		t.Fatalf("ransom note: %s %+v", r.Verdict, r.Findings)
	}
	r = mustScan(t, s, dir)
	if r.Verdict != Compromised || len(r.Findings) != 2 {
		t.Fatalf("both: %s %+v", r.Verdict, r.Findings)
	}
	if _, err := s.Scan(context.Background(), dir, "nope"); !errors.Is(err, ErrBadSpec) {
		t.Errorf("unknown scanner: %v", err)
	}
}

func TestIOCBadHashList(t *testing.T) {
	dir := t.TempDir()
	list := mustWrite(t, dir, "feed.txt", []byte("# ok\n"+strings.Repeat("a", 64)+"\nnot-a-hash\n"))
	_, err := Compile(context.Background(), []Spec{{Name: "cert", Type: TypeIOC, HashLists: []string{list}}}, Options{})
	if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), list+":3:") || !strings.Contains(err.Error(), `"not-a-hash"`) {
		t.Fatalf("got %v, want the file, line 3 and the value", err)
	}
	_, err = Compile(context.Background(), []Spec{{Name: "cert", Type: TypeIOC, HashLists: []string{filepath.Join(dir, "missing")}}}, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing list: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"unknown type", Spec{Name: "x", Type: "virustotal"}, `unknown type "virustotal"`},
		{"empty ioc", Spec{Name: "x", Type: TypeIOC}, "needs hash lists or name patterns"},
		{"bad pattern", Spec{Name: "x", Type: TypeIOC, Names: []string{"[a"}}, `bad name pattern "[a"`},
		{"threshold", Spec{Name: "x", Type: TypeEntropy, Threshold: 1.5}, "threshold 1.5 out of range"},
		{"no rules", Spec{Name: "x", Type: TypeYARA}, "at least one rules file"},
		{"no database", Spec{Name: "x", Type: TypeClamAV}, "signature database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(context.Background(), []Spec{tc.spec}, Options{})
			if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `scanner "x"`) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "a.txt", text(5000))
	mustWrite(t, dir, "b/c.bin", randomBytes(t, 100000))
	before := snapshot(t, dir)
	s := mustCompile(t, Spec{Name: "e", Type: TypeEntropy}, Spec{Name: "i", Type: TypeIOC, Names: []string{"*.x"}})
	mustScan(t, s, dir)
	if after := snapshot(t, dir); after != before {
		t.Fatalf("the scan changed the tree:\n%s\nwas\n%s", after, before)
	}
}

// snapshot lists every path with its mode, size, modification time and hash.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %v", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestUnreadableFileIsSuspicious(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	dir := t.TempDir()
	p := mustWrite(t, dir, "secret.db", text(3000))
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	r := mustScan(t, mustCompile(t, Spec{Name: "e", Type: TypeEntropy}), dir)
	if r.Verdict != Suspicious || len(r.Findings) != 1 || r.Findings[0].File != "secret.db" {
		t.Fatalf("got %s %+v", r.Verdict, r.Findings)
	}
}

func TestMissingCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	rules := mustWrite(t, t.TempDir(), "r.yar", []byte("rule x { condition: true }"))
	_, err := Compile(context.Background(), []Spec{
		{Name: "y", Type: TypeYARA, Rules: []string{rules}},
		{Name: "c", Type: TypeClamAV, Database: rules},
	}, Options{})
	if !errors.Is(err, ErrMissingCommand) {
		t.Fatalf("got %v, want ErrMissingCommand", err)
	}
	for _, want := range []string{`scanner "y"`, "yara is not on PATH", "apt-get install yara", `scanner "c"`, "apt-get install clamav"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
}

func needCommand(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed (.ci/run installs it): %v", name, err)
	}
}

const webShellRule = `
rule PHP_WebShell_Eval : webshell
{
  meta:
    description = "PHP web shell running what a request posts"
  strings:
    $eval = /eval\s*\(\s*\$_(POST|GET|REQUEST)/
  condition:
    $eval
}

rule Packed_Maybe : suspicious
{
  strings:
    $upx = "UPX!"
  condition:
    $upx
}
`

func TestYARA(t *testing.T) {
	needCommand(t, "yara")
	rules := mustWrite(t, t.TempDir(), "webshells:v1.yar", []byte(webShellRule))
	s := mustCompile(t, Spec{Name: "rules", Type: TypeYARA, Rules: []string{rules}})
	dir := t.TempDir()
	mustWrite(t, dir, "www/index.php", []byte("<?php echo 'hello'; ?>"))
	r := mustScan(t, s, dir)
	if r.Verdict != Clean || len(r.Findings) != 0 {
		t.Fatalf("clean tree: %s %+v", r.Verdict, r.Findings)
	}
	mustWrite(t, dir, "tools/packed bin", []byte("xxUPX!xx"))
	if r = mustScan(t, s, dir); r.Verdict != Suspicious || len(r.Findings) != 1 || r.Findings[0].Rule != "Packed_Maybe" {
		t.Fatalf("suspicious rule: %s %+v", r.Verdict, r.Findings)
	}
	mustWrite(t, dir, "www/uploads/img 1.php", []byte("<?php @eval( $_POST['cmd']); ?>"))
	r = mustScan(t, s, dir)
	if r.Verdict != Compromised || len(r.Findings) != 2 {
		t.Fatalf("web shell: %s %+v", r.Verdict, r.Findings)
	}
	f := r.Findings[1]
	if f.File != "www/uploads/img 1.php" || f.Rule != "PHP_WebShell_Eval" || f.Scanner != "rules" || f.Verdict != Compromised {
		t.Errorf("finding %+v", f)
	}

	bad := mustWrite(t, t.TempDir(), "bad.yar", []byte("rule { nope"))
	_, err := Compile(context.Background(), []Spec{{Name: "rules", Type: TypeYARA, Rules: []string{bad}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `scanner "rules": load rules`) || !strings.Contains(err.Error(), "bad.yar") {
		t.Fatalf("bad rules: %v", err)
	}
}

func TestClamAV(t *testing.T) {
	needCommand(t, "clamscan")
	implant := []byte("MZ fake implant dropped by the attacker\n")
	db := mustWrite(t, t.TempDir(), "local.hdb", fmt.Appendf(nil, "%x:%d:Reprise.Test.Implant\n", md5sum(implant), len(implant)))
	s := mustCompile(t, Spec{Name: "av", Type: TypeClamAV, Database: db})
	dir := t.TempDir()
	mustWrite(t, dir, "a.txt", text(2000))
	if r := mustScan(t, s, dir); r.Verdict != Clean {
		t.Fatalf("clean: %s %+v", r.Verdict, r.Findings)
	}
	mustWrite(t, dir, "Windows/Temp/svc host.exe", implant)
	r := mustScan(t, s, dir)
	if r.Verdict != Compromised || len(r.Findings) != 1 {
		t.Fatalf("implant: %s %+v", r.Verdict, r.Findings)
	}
	if f := r.Findings[0]; f.File != "Windows/Temp/svc host.exe" || !strings.HasPrefix(f.Rule, "Reprise.Test.Implant") {
		t.Errorf("finding %+v", f)
	}
}
