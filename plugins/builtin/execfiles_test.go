package builtin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Each command gets its own REPRISE_OUTPUT path, of a file it creates if
// it sets outputs, in a folder of mode 0700 that only this process uses;
// the file is gone when the command is done, the folder once no command
// used it for a while (or when the plugin stops); stdin reads as empty.
// Sixteen commands at once never share a file.
func TestExecOutputsFiles(t *testing.T) {
	dir := t.TempDir()
	mustScript(t, dir, "restore.sh", `cat   # stdin is /dev/null: ends at once
ls -ld "$(dirname "$REPRISE_OUTPUT")" | cut -c1-10
test -e "$REPRISE_OUTPUT" && echo "the outputs file exists before the command writes it"
echo "path=$REPRISE_OUTPUT" >> "$REPRISE_OUTPUT"
echo "node=$REPRISE_NODE" >> "$REPRISE_OUTPUT"
`)
	const n = 16
	paths := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%02d", i)
			rec := sdk.NewRecorder()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := (&Exec{}).Restore(ctx, execRequest(node, dir, map[string]any{"restore": []string{"./restore.sh"}}), rec.Stream); err != nil {
				errs <- fmt.Errorf("node %s: %w", node, err)
				return
			}
			var logs []string
			for _, ev := range rec.Events() {
				if ev.Kind == "log" {
					logs = append(logs, ev.Message)
				}
			}
			if strings.Join(logs, "|") != "drwx------" {
				errs <- fmt.Errorf("node %s: the command said %q, want only the folder's mode drwx------", node, logs)
			}
			out := rec.Outputs()
			if out["node"] != node {
				errs <- fmt.Errorf("node %s read the outputs %v", node, out)
			}
			paths[i] = out["path"]
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if p == "" || seen[p] {
			t.Fatalf("outputs files %q: want one each", paths)
		}
		seen[p] = true
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("outputs file %s left behind (%v)", p, err)
		}
	}
	folder := filepath.Dir(paths[0])
	if !strings.HasPrefix(filepath.Base(folder), fmt.Sprintf("reprise-exec-%d-", os.Getpid())) {
		t.Errorf("outputs folder %s: want one named after this process", folder)
	}
	deadline := time.Now().Add(outputsIdle + 10*time.Second)
	for {
		if _, err := os.Stat(folder); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outputs folder %s still there %s after the last command", folder, outputsIdle+10*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A command that sets no outputs never made the file: no outputs, no
	// warning.
	rec := sdk.NewRecorder()
	if err := (&Exec{}).Restore(context.Background(), execRequest("quiet", dir, map[string]any{"restore": []string{"true"}}), rec.Stream); err != nil {
		t.Fatal(err)
	}
	if evs := rec.Events(); len(rec.Outputs()) != 0 || len(evs) != 0 {
		t.Errorf("a command that set no outputs: outputs %v, events %+v; want none", rec.Outputs(), evs)
	}

	// close (the plugin stops) removes a folder at once.
	p, err := outputs.take()
	if err != nil {
		t.Fatal(err)
	}
	outputs.done(p)
	outputs.close()
	if _, err := os.Stat(filepath.Dir(p)); !os.IsNotExist(err) {
		t.Errorf("outputs folder left after close: %v", err)
	}
}

// TestMain removes the outputs folder the tests' commands left (a plugin
// process does so when it stops).
func TestMain(m *testing.M) {
	code := m.Run()
	outputs.close()
	os.Exit(code)
}

// The sweep removes the empty, hour-old outputs folders of processes that
// are gone, and nothing else.
func TestSweepOutputs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone, live := dead.Process.Pid, os.Getppid()
	old := time.Now().Add(-2 * time.Hour)
	mk := func(pid int, age time.Time, file bool) string {
		dir, err := os.MkdirTemp(tmp, fmt.Sprintf("%s%d-", outputsPrefix, pid))
		if err != nil {
			t.Fatal(err)
		}
		if file {
			if err := os.WriteFile(filepath.Join(dir, "output-1"), []byte("k=v\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, age, age); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	swept := mk(gone, old, false)
	kept := []string{mk(gone, time.Now(), false), mk(gone, old, true), mk(live, old, false), mk(os.Getpid(), old, false)}
	sweepOutputs()
	if _, err := os.Stat(swept); !os.IsNotExist(err) {
		t.Errorf("the empty, old folder of a process that is gone was kept (%v)", err)
	}
	for _, dir := range kept {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("folder %s was swept: %v", filepath.Base(dir), err)
		}
	}
}
