// Package pythonplugin holds the Go test that drives the Python example
// plugin (reprise-plugin-lis) through the real reprise binary.
package pythonplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// python is Debian's interpreter, the one the plugin's first line names
// (another python3 on PATH may lack Debian's grpcio).
const python = "/usr/bin/python3"

var (
	buildOnce sync.Once
	reprise   string
	buildErr  error
)

// mustReprise builds the reprise binary once for the package's tests.
func mustReprise(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds reprise and runs the Python plugin")
	}
	out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
	if err != nil {
		t.Fatalf("the Python plugin needs Debian's python3-grpcio, python3-protobuf and python3-cryptography "+
			"(apt-get install python3-grpcio python3-protobuf python3-cryptography; .ci/run installs them): %v\n%s", err, out)
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reprise-python-plugin-")
		if err != nil {
			buildErr = err
			return
		}
		reprise = filepath.Join(dir, "reprise")
		if out, err := exec.Command("go", "build", "-o", reprise, "../../cmd/reprise").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build reprise: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return reprise
}

func TestMain(m *testing.M) {
	code := m.Run()
	if reprise != "" {
		os.RemoveAll(filepath.Dir(reprise))
	}
	os.Exit(code)
}

// site is a lab system's backup in a temporary folder: an SQL dump of
// three tables and the row counts it must give.
type site struct {
	dir    string
	counts map[string]int
}

func mustSite(t *testing.T) site {
	t.Helper()
	s := site{dir: t.TempDir(), counts: map[string]int{"patients": 40, "orders": 120, "results": 360}}
	var b strings.Builder
	b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	b.WriteString("CREATE TABLE patients(id INTEGER PRIMARY KEY, name TEXT);\n")
	b.WriteString("CREATE TABLE orders(id INTEGER PRIMARY KEY, patient INTEGER, test TEXT);\n")
	b.WriteString("CREATE TABLE results(id INTEGER PRIMARY KEY, order_id INTEGER, value REAL,\n  unit TEXT);\n")
	for i := 1; i <= s.counts["patients"]; i++ {
		fmt.Fprintf(&b, "INSERT INTO patients VALUES(%d,'patient %d; ward ''B''');\n", i, i)
	}
	for i := 1; i <= s.counts["orders"]; i++ {
		fmt.Fprintf(&b, "INSERT INTO orders VALUES(%d,%d,'CBC');\n", i, 1+i%s.counts["patients"])
	}
	for i := 1; i <= s.counts["results"]; i++ {
		fmt.Fprintf(&b, "INSERT INTO results VALUES(%d,%d,%d.5,'g/L');\n", i, 1+i%s.counts["orders"], i)
	}
	b.WriteString("COMMIT;\n")
	mustWrite(t, filepath.Join(s.dir, "backup", "lis.sql"), b.String())
	counts, _ := json.Marshal(s.counts)
	mustWrite(t, filepath.Join(s.dir, "backup", "lis.sql.counts.json"), string(counts))
	return s
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pluginDecl is a graph's declaration of the plugin: its path and, when
// pin is set, its sha256.
type pluginDecl struct{ path, pin string }

// graph writes a graph of the lab system: its database restored by the
// Python plugin, then its application (exec) given the verified row count
// (an output set by the plugin's Verify) and the database path (Restore's).
func (s site) graph(t *testing.T, name, with string) string {
	t.Helper()
	plugin, err := filepath.Abs("reprise-plugin-lis")
	if err != nil {
		t.Fatal(err)
	}
	return s.graphWith(t, name, with, pluginDecl{path: plugin})
}

func (s site) graphWith(t *testing.T, name, with string, p pluginDecl) string {
	t.Helper()
	decl := "path: " + p.path
	if p.pin != "" {
		decl += ", sha256: " + p.pin
	}
	path := filepath.Join(s.dir, name)
	mustWrite(t, path, fmt.Sprintf(`version: 1
name: lab
plugins:
  lis: { %s }
nodes:
  - id: lis-db
    kind: data
    plugin: lis
    with: %s
  - id: lis-app
    kind: application
    plugin: exec
    depends_on: [lis-db]
    with:
      restore: [sh, -c, 'echo "$0 $1" > app.txt', "${nodes.lis-db.outputs.verified_rows}", "${nodes.lis-db.outputs.database}"]
`, decl, with))
	return path
}

// run runs reprise with args in the site's folder and returns its exit
// code, stdout and stderr.
func (s site) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(mustReprise(t), args...)
	cmd.Dir = s.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("reprise %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// TestPythonPluginEndToEnd: reprise describes, validates, dry-runs and
// runs a graph whose database node is restored by the Python plugin over
// AutoMTLS; the dependent receives Restore's and Verify's outputs; a second
// dry run finds the node restored by Check.
func TestPythonPluginEndToEnd(t *testing.T) {
	s := mustSite(t)
	g := s.graph(t, "graph.yaml", `{ dump: backup/lis.sql, database: lis.db }`)

	code, out, errOut := s.run(t, "plugins", g, "--json")
	if code != 0 || !strings.Contains(out, `"name": "lis"`) || !strings.Contains(out, `"data"`) {
		t.Fatalf("plugins: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := s.run(t, "validate", g); code != 0 {
		t.Fatalf("validate: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = s.run(t, "run", "--dry-run", "--json", g)
	if code != 0 || !strings.Contains(out, "not restored yet") {
		t.Fatalf("dry run: exit %d, want Check's message 'not restored yet'\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = s.run(t, "run", "--state", "reprise.db", g)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	app, err := os.ReadFile(filepath.Join(s.dir, "app.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("520 %s\n", filepath.Join(s.dir, "lis.db")); string(app) != want {
		t.Errorf("lis-app was given %q, want %q (Verify's verified_rows, Restore's database)", app, want)
	}
	logText, err := os.ReadFile(filepath.Join(s.dir, "reprise.db.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"loading `, `"msg":"restore started"`} {
		if !strings.Contains(string(logText), want) {
			t.Errorf("reprise.db.log lacks the plugin's %s (a log event and an hclog stderr line):\n%s", want, logText)
		}
	}

	code, out, errOut = s.run(t, "run", "--dry-run", "--json", g)
	if code != 0 || !strings.Contains(out, `"restored"`) || !strings.Contains(out, "holds the expected rows") {
		t.Errorf("dry run after the restore: exit %d, want lis-db restored by Check\n%s\n%s", code, out, errOut)
	}
}

// TestPythonPluginRefuses: the plugin's Validate problems reach `reprise
// validate` with the node's position, a node of a kind the plugin does not
// declare is refused, and a dump whose rows do not match fails the step.
func TestPythonPluginRefuses(t *testing.T) {
	s := mustSite(t)
	bad := s.graph(t, "bad.yaml", `{ database: lis.db, tables: 3 }`)
	code, _, errOut := s.run(t, "validate", bad)
	for _, want := range []string{"bad.yaml:6:5:", `node "lis-db"`, "with.dump: required field missing", "with.tables: unknown field"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("validate: exit %d, want 1 and %q in:\n%s", code, want, errOut)
		}
	}

	kind := s.graph(t, "kind.yaml", `{ dump: backup/lis.sql, database: lis.db }`)
	src, _ := os.ReadFile(kind)
	mustWrite(t, kind, strings.Replace(string(src), "kind: data", "kind: application", 1))
	code, _, errOut = s.run(t, "run", "--state", "kind.db", kind)
	if code != 1 || !strings.Contains(errOut, `kind.yaml:7:11: node "lis-db": plugin "lis" does not declare kind "application" (its kinds: data)`) {
		t.Errorf("run with a kind the plugin does not declare: exit %d\n%s", code, errOut)
	}

	mustWrite(t, filepath.Join(s.dir, "backup", "lis.sql.counts.json"), `{"patients": 40, "orders": 121, "results": 360}`)
	g := s.graph(t, "graph.yaml", `{ dump: backup/lis.sql, database: lis.db }`)
	code, out, errOut := s.run(t, "run", "--state", "reprise.db", "--json", g)
	if code != 3 || !strings.Contains(out, "table orders has 120 rows, want 121") {
		t.Errorf("run with a wrong row count: exit %d, want 3 and the count in the failure\n%s\n%s", code, out, errOut)
	}
}

// TestPythonPluginPinnedZipapp ships the plugin as the contract advises for
// a script: one file (a zipapp holding the plugin, reprise_plugin.py and
// gen/) with an absolute interpreter path, pinned by sha256 in the graph.
func TestPythonPluginPinnedZipapp(t *testing.T) {
	s := mustSite(t)
	mustReprise(t)
	src := filepath.Join(t.TempDir(), "src")
	main, err := os.ReadFile("reprise-plugin-lis")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(src, "__main__.py"), string(main))
	root := filepath.Join("..", "..", "plugins", "python")
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".py") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err == nil {
			mustWrite(t, filepath.Join(src, rel), string(b))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pyz := filepath.Join(t.TempDir(), "reprise-plugin-lis.pyz")
	if out, err := exec.Command(python, "-m", "zipapp", src, "-p", python, "-o", pyz).CombinedOutput(); err != nil {
		t.Fatalf("zipapp: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pyz)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	g := s.graphWith(t, "graph.yaml", `{ dump: backup/lis.sql, database: lis.db }`, pluginDecl{path: pyz, pin: hex.EncodeToString(sum[:])})
	if code, out, errOut := s.run(t, "run", "--state", "reprise.db", g); code != 0 {
		t.Fatalf("run of the pinned zipapp: exit %d\n%s\n%s", code, out, errOut)
	}
	if app, _ := os.ReadFile(filepath.Join(s.dir, "app.txt")); !strings.HasPrefix(string(app), "520 ") {
		t.Errorf("lis-app was given %q, want 520 verified rows", app)
	}

	if err := os.WriteFile(pyz, append(b, '\n'), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := s.run(t, "run", "--state", "changed.db", g)
	if code == 0 || !strings.Contains(out+errOut, "checksum mismatch") {
		t.Errorf("run of a changed zipapp: exit %d, want a checksum mismatch\n%s\n%s", code, out, errOut)
	}
}

// TestPythonPluginListsPoints: the Python plugin lists the lab database's
// restore points itself (ListRestorePoints, times sent in UTC); reprise
// scans them newest first, rejects the one holding a ransom note, and the
// plugin restores the dump of the clean one it is given.
func TestPythonPluginListsPoints(t *testing.T) {
	s := mustSite(t)
	dump, err := os.ReadFile(filepath.Join(s.dir, "backup", "lis.sql"))
	if err != nil {
		t.Fatal(err)
	}
	counts, _ := os.ReadFile(filepath.Join(s.dir, "backup", "lis.sql.counts.json"))
	for id, taken := range map[string]string{"lis-1128": "2026-11-28T02:00:00Z", "lis-1129": "2026-11-29T03:00:00+01:00"} {
		mustWrite(t, filepath.Join(s.dir, "vault", id, "taken"), taken+"\n")
		mustWrite(t, filepath.Join(s.dir, "vault", id, "lis.sql"), string(dump))
		mustWrite(t, filepath.Join(s.dir, "vault", id, "lis.sql.counts.json"), string(counts))
	}
	mustWrite(t, filepath.Join(s.dir, "vault", "lis-1129", "HOW_TO_DECRYPT.txt"), "pay")
	plugin, err := filepath.Abs("reprise-plugin-lis")
	if err != nil {
		t.Fatal(err)
	}
	g := filepath.Join(s.dir, "points.yaml")
	mustWrite(t, g, fmt.Sprintf(`version: 1
name: lab
plugins:
  lis: { path: %s }
scanners:
  notes: { type: ioc, names: ['*DECRYPT*'] }
nodes:
  - id: lis-db
    kind: data
    plugin: lis
    scan: [notes]
    restore_points: { from: plugin, roots: [vault] }
    with: { dump: lis.sql, database: lis.db, backups: vault }
`, plugin))
	if code, out, errOut := s.run(t, "validate", g); code != 0 {
		t.Fatalf("validate: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := s.run(t, "plugins", g); code != 0 || !strings.Contains(out, "  points:  lists restore points") {
		t.Errorf("plugins: exit %d, want the plugin listed as listing restore points\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := s.run(t, "run", "--state", "reprise.db", g); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := s.run(t, "status", "--state", "reprise.db", "--json")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	var st struct {
		RestorePoints []struct {
			Node, Point, Time, Verdict string
		} `json:"restore_points"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(st.RestorePoints) != 1 || st.RestorePoints[0].Point != "lis-1128" || st.RestorePoints[0].Verdict != "clean" ||
		st.RestorePoints[0].Time != "2026-11-28T02:00:00Z" {
		t.Errorf("restore points %+v, want lis-1128 (clean)", st.RestorePoints)
	}
	code, out, _ = s.run(t, "log", "--state", "reprise.db")
	if code != 0 || !strings.Contains(out, "lis-1129: encrypted") || !strings.Contains(out, "2026-11-29T02:00:00Z") {
		t.Errorf("log: exit %d, want lis-1129 (taken 2026-11-29T02:00:00Z in UTC) found encrypted:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "lis.db")); err != nil {
		t.Errorf("lis.db not restored: %v", err)
	}
}
