package builtin

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// mustProgram writes an executable script at path that prints what.
func mustProgram(t *testing.T, path, what string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho "+what+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func newPathCache(t *testing.T) *pathCache {
	c := &pathCache{ep: -1, ino: -1, mounts: -1}
	t.Cleanup(func() {
		c.mu.Lock()
		c.close()
		c.mu.Unlock()
	})
	return c
}

// TestLookPathCacheFollowsChanges: once a lookup is remembered, every change
// that would change an uncached lookup's answer is seen, and the next
// lookup answers what exec.LookPath answers; without a change the answer
// is remembered (no second lookup).
func TestLookPathCacheFollowsChanges(t *testing.T) {
	tests := []struct {
		name   string
		path   []string // PATH folders, under the test's folder
		before func(t *testing.T, root string)
		change func(t *testing.T, root string)
		// forgotten: the answer is not remembered (an entry of that name
		// in an earlier folder).
		forgotten bool
	}{
		{"shadowed by a program made in an earlier folder", []string{"a", "b"},
			func(t *testing.T, r string) { mustProgram(t, filepath.Join(r, "b", "prog"), "b") },
			func(t *testing.T, r string) { mustProgram(t, filepath.Join(r, "a", "prog"), "a") }, false},
		{"removed: the next folder's", []string{"a", "b", "c"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "b", "prog"), "b")
				mustProgram(t, filepath.Join(r, "c", "prog"), "c")
			},
			func(t *testing.T, r string) { must(t, os.Remove(filepath.Join(r, "b", "prog"))) }, false},
		{"removed everywhere: not found", []string{"a", "b"},
			func(t *testing.T, r string) { mustProgram(t, filepath.Join(r, "b", "prog"), "b") },
			func(t *testing.T, r string) { must(t, os.Remove(filepath.Join(r, "b", "prog"))) }, false},
		{"no longer executable", []string{"b", "c"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "b", "prog"), "b")
				mustProgram(t, filepath.Join(r, "c", "prog"), "c")
			},
			func(t *testing.T, r string) { must(t, os.Chmod(filepath.Join(r, "b", "prog"), 0o644)) }, false},
		{"made not executable through another link", []string{"b", "c"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "b", "prog"), "b")
				mustProgram(t, filepath.Join(r, "c", "prog"), "c")
				must(t, os.Mkdir(filepath.Join(r, "elsewhere"), 0o755))
				must(t, os.Link(filepath.Join(r, "b", "prog"), filepath.Join(r, "elsewhere", "other")))
			},
			func(t *testing.T, r string) { must(t, os.Chmod(filepath.Join(r, "elsewhere", "other"), 0o644)) }, false},
		{"a missing folder made, with the program", []string{"a/missing/bin", "b"},
			func(t *testing.T, r string) { mustProgram(t, filepath.Join(r, "b", "prog"), "b") },
			func(t *testing.T, r string) { mustProgram(t, filepath.Join(r, "a", "missing", "bin", "prog"), "new") }, false},
		{"a folder renamed into PATH", []string{"a/bin", "b"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "b", "prog"), "b")
				mustProgram(t, filepath.Join(r, "a", "staged", "prog"), "staged")
			},
			func(t *testing.T, r string) {
				must(t, os.Rename(filepath.Join(r, "a", "staged"), filepath.Join(r, "a", "bin")))
			}, false},
		{"a folder on the way renamed away", []string{"a/p/bin", "b"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "a", "p", "bin", "prog"), "a")
				mustProgram(t, filepath.Join(r, "b", "prog"), "b")
			},
			func(t *testing.T, r string) {
				must(t, os.Rename(filepath.Join(r, "a", "p"), filepath.Join(r, "a", "q")))
			}, false},
		{"a linked program's target made not executable", []string{"b", "c"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "target", "real"), "real")
				must(t, os.Symlink(filepath.Join(r, "target", "real"), filepath.Join(r, "b", "prog")))
				mustProgram(t, filepath.Join(r, "c", "prog"), "c")
			},
			func(t *testing.T, r string) { must(t, os.Chmod(filepath.Join(r, "target", "real"), 0o644)) }, false},
		{"a non-executable entry in an earlier folder made executable", []string{"a", "b"},
			func(t *testing.T, r string) {
				mustProgram(t, filepath.Join(r, "a", "prog"), "a")
				must(t, os.Chmod(filepath.Join(r, "a", "prog"), 0o644))
				mustProgram(t, filepath.Join(r, "b", "prog"), "b")
			},
			func(t *testing.T, r string) { must(t, os.Chmod(filepath.Join(r, "a", "prog"), 0o755)) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			must(t, os.MkdirAll(filepath.Join(root, "b"), 0o755))
			var dirs []string
			for _, d := range tt.path {
				dirs = append(dirs, filepath.Join(root, d))
			}
			t.Setenv("PATH", strings.Join(dirs, string(os.PathListSeparator)))
			tt.before(t, root)
			c := newPathCache(t)
			first, err := c.lookup("prog")
			if want, werr := exec.LookPath("prog"); first != want || (err == nil) != (werr == nil) {
				t.Fatalf("first lookup = %q, %v; exec.LookPath = %q, %v", first, err, want, werr)
			}
			wantFills := 1
			if tt.forgotten {
				wantFills = 2
			}
			if again, _ := c.lookup("prog"); again != first || c.fills != wantFills {
				t.Fatalf("second lookup = %q after %d lookups, want %q after %d", again, c.fills, first, wantFills)
			}
			tt.change(t, root)
			got, err := c.lookup("prog")
			want, werr := exec.LookPath("prog")
			if got != want || (err == nil) != (werr == nil) {
				t.Fatalf("after the change: lookup = %q, %v; exec.LookPath = %q, %v", got, err, want, werr)
			}
			if got == first && err == nil {
				t.Fatalf("the change did not change exec.LookPath's answer %q: a useless case", got)
			}
		})
	}
}

// TestLookPathCacheUnwatchable: an answer found through a folder that
// cannot be watched (a symbolic link on the way, a relative folder) is
// never remembered.
func TestLookPathCacheUnwatchable(t *testing.T) {
	root := t.TempDir()
	mustProgram(t, filepath.Join(root, "real", "prog"), "x")
	must(t, os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "link")))
	for _, path := range []string{filepath.Join(root, "link"), "rel:" + filepath.Join(root, "real")} {
		t.Setenv("PATH", path)
		c := newPathCache(t)
		for range 3 {
			_, _ = c.lookup("prog")
		}
		if c.fills != 3 {
			t.Errorf("PATH %s: %d lookups of 3, want none remembered", path, c.fills)
		}
	}
	t.Setenv("PATH", filepath.Join(root, "real"))
	c := newPathCache(t)
	t.Setenv("PATH", filepath.Join(root, "link"))
	if got, _ := c.lookup("prog"); got != filepath.Join(root, "link", "prog") {
		t.Errorf("after PATH changed: %q, want the new PATH's answer", got)
	}
}

// TestLookPathCacheConcurrent: lookups from many commands at once, while
// the program is replaced, always answer a path that exec.LookPath could
// have answered (run with -race).
func TestLookPathCacheConcurrent(t *testing.T) {
	root := t.TempDir()
	mustProgram(t, filepath.Join(root, "b", "prog"), "b")
	must(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	t.Setenv("PATH", filepath.Join(root, "a")+":"+filepath.Join(root, "b"))
	c := newPathCache(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := c.lookup("prog")
				if err != nil || (got != filepath.Join(root, "a", "prog") && got != filepath.Join(root, "b", "prog")) {
					t.Errorf("lookup = %q, %v", got, err)
					return
				}
			}
		})
	}
	mustProgram(t, filepath.Join(root, "a", "prog"), "a")
	wg.Wait()
	if got, _ := c.lookup("prog"); got != filepath.Join(root, "a", "prog") {
		t.Errorf("after the writers: %q, want a's", got)
	}
}

// TestExecRunsProgramReplacedOnDisk: a node's bare program name, replaced
// on disk or shadowed in PATH between two nodes, runs the new program.
func TestExecRunsProgramReplacedOnDisk(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	t.Setenv("PATH", filepath.Join(root, "a")+":"+filepath.Join(root, "b")+":"+os.Getenv("PATH"))
	run := func() string {
		t.Helper()
		rec := sdk.NewRecorder()
		if err := (&Exec{}).Restore(context.Background(), execRequest("n", root, map[string]any{"restore": []string{"prog"}}), rec.Stream); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		for _, ev := range rec.Events() {
			if ev.Kind == "log" {
				return ev.Message
			}
		}
		return ""
	}
	mustProgram(t, filepath.Join(root, "b", "prog"), "one")
	if got := run(); got != "one" {
		t.Fatalf("first node printed %q, want one", got)
	}
	// Replaced the way package managers do: a new file renamed over it.
	mustProgram(t, filepath.Join(root, "b", "prog.new"), "two")
	must(t, os.Rename(filepath.Join(root, "b", "prog.new"), filepath.Join(root, "b", "prog")))
	if got := run(); got != "two" {
		t.Fatalf("after the replacement the node printed %q, want two", got)
	}
	mustProgram(t, filepath.Join(root, "a", "prog"), "three")
	if got := run(); got != "three" {
		t.Fatalf("with a program of that name earlier in PATH the node printed %q, want three", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
}
