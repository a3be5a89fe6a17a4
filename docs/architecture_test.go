// Package docs holds the project's design notes; its test keeps
// ARCHITECTURE.md's import rules true of the code.
package docs

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/reprise-si/reprise/"

// importRules reads the "may import" table of ARCHITECTURE.md: package →
// allowed packages of ours (a prefix: plugins/proto allows its
// subpackages); nil for "everything".
func importRules(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code := regexp.MustCompile("`([^`]+)`")
	rules := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "| package | may import") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|") // "", package, allowed, ""
		if len(cells) != 4 {
			t.Fatalf("ARCHITECTURE.md: table row %q: want two cells", line)
		}
		var allowed []string
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			allowed = append(allowed, m[1])
		}
		if strings.TrimSpace(cells[2]) == "everything" {
			allowed = nil
		} else if allowed == nil {
			allowed = []string{} // "nothing"
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			rules[m[1]] = allowed
		}
	}
	if len(rules) < 10 {
		t.Fatalf("ARCHITECTURE.md: found %d import rules, want the whole table", len(rules))
	}
	return rules
}

// TestImportRules checks every package the table names against what it
// imports (go list, tests excluded): the scheduler and the plugin host meet
// only in engine/step, graphs imports nothing of ours, and so on.
func TestImportRules(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	rules := importRules(t)
	cmd := exec.Command(gobin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		allowed, ok := rules[pkg]
		if !ok {
			continue
		}
		seen[pkg] = true
		if allowed == nil {
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			if !permitted(imp, allowed) {
				t.Errorf("%s imports %s; ARCHITECTURE.md allows only %v", pkg, imp, allowed)
			}
		}
	}
	for pkg := range rules {
		if !seen[pkg] {
			t.Errorf("ARCHITECTURE.md names package %s, which go list does not know", pkg)
		}
	}
}

func permitted(imp string, allowed []string) bool {
	for _, a := range allowed {
		if imp == a || strings.HasPrefix(imp, a+"/") {
			return true
		}
	}
	return false
}
