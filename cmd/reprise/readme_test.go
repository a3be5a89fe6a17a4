package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reprise-si/reprise/internal/buildtest"
)

// TestReadmeWalkthrough runs the commands of the README's "A first rebuild"
// walkthrough, as written, on a copy of examples/quickstart: every command
// must exit as the README says (0, or the code of a trailing "# exit N").
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs the built binary through a whole rebuild")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lines := readmeBlock(t, filepath.Join(root, "README.md"), "## A first rebuild")
	if len(lines) < 5 {
		t.Fatalf("README walkthrough has %d commands, want the whole tour", len(lines))
	}

	// A scratch "repository": bin/reprise built from this tree (a copy of
	// the repository's, which buildtest relinks only when it is out of
	// date), and a copy of the quickstart example.
	top := t.TempDir()
	if err := buildtest.Build("reprise"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(top, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", filepath.Join(root, "bin", "reprise"), filepath.Join(top, "bin", "reprise")).CombinedOutput(); err != nil {
		t.Fatalf("copy bin/reprise: %v\n%s", err, out)
	}
	if out, err := exec.Command("cp", "-R", filepath.Join(root, "examples"), filepath.Join(top, "examples")).CombinedOutput(); err != nil {
		t.Fatalf("copy examples: %v\n%s", err, out)
	}

	var script strings.Builder
	script.WriteString("set -u\n")
	exitRe := regexp.MustCompile(`#\s*exit (\d+)`)
	for i, line := range lines {
		want := "0"
		if m := exitRe.FindStringSubmatch(line); m != nil {
			want = m[1]
		}
		fmt.Fprintf(&script, "echo '$ '%q\n%s\nrc=$?\nif [ $rc -ne %s ]; then echo \"README command %d (%s) exited $rc, want %s\" >&2; exit 1; fi\n",
			line, line, want, i+1, strings.ReplaceAll(line, `"`, `'`), want)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = top
	cmd.Env = append(os.Environ(), "REPRISE_STATE=") // the README relies on the default state file
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README walkthrough: %v\n%s", err, out)
	}
	for _, want := range []string{"valid", "parked", "approved by Dr Martin", "hash chain intact", "wrote report.html"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("README walkthrough output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(top, "examples", "quickstart", "reprise.db")); !os.IsNotExist(err) {
		t.Errorf("the walkthrough's clean-up left reprise.db behind (stat: %v)", err)
	}
}

// readmeBlock returns the command lines of the first ```sh block after the
// heading, without blank lines.
func readmeBlock(t *testing.T, path, heading string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	seen, in := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case !seen:
			seen = strings.HasPrefix(l, heading)
		case !in && l == "```sh":
			in = true
		case in && l == "```":
			return lines
		case in && strings.TrimSpace(l) != "":
			lines = append(lines, l)
		}
	}
	t.Fatalf("%s: no ```sh block after %q", path, heading)
	return nil
}
