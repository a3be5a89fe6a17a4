package builtin

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// mustScript writes an executable shell script named name in dir.
func mustScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// execRequest is a request for node n with config, run from dir.
func execRequest(n, dir string, config map[string]any) *sdk.Request {
	req := sdk.NewRequest(n, config)
	req.WorkDir = dir
	return req
}

func TestExecValidate(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   []string // substrings, one per problem
	}{
		{"fine", map[string]any{"restore": []string{"./r.sh"}, "check": []string{"./c.sh"}, "env": map[string]string{"A": "1"}}, nil},
		{"no restore", map[string]any{}, []string{"restore"}},
		{"empty restore", map[string]any{"restore": []string{""}}, []string{"with.restore: want a command"}},
		{"empty check and verify", map[string]any{"restore": []string{"x"}, "check": []string{}, "verify": []string{""}},
			[]string{"with.check: want a command", "with.verify: want a command"}},
		{"bad env name", map[string]any{"restore": []string{"x"}, "env": map[string]string{"A=B": "1"}}, []string{`with.env: invalid variable name "A=B"`}},
		{"unknown field", map[string]any{"restore": []string{"x"}, "restroe": 1}, []string{"restroe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&Exec{}).Validate(context.Background(), sdk.NewRequest("n", tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %d naming %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to name %q", i, got[i], w)
				}
			}
		})
	}
}

// TestExecRestore: output lines become logs (stderr as warnings),
// REPRISE_OUTPUT lines become outputs, the environment names the node and
// the drill, and a relative dir resolves from the graph's folder.
func TestExecRestore(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustScript(t, filepath.Join(dir, "sub"), "restore.sh", `echo "node $REPRISE_NODE attempt $REPRISE_ATTEMPT drill $REPRISE_DRILL in $(basename "$PWD") $GREETING"
echo "careful" >&2
echo "host=db1" >> "$REPRISE_OUTPUT"
echo "not a pair" >> "$REPRISE_OUTPUT"
`)
	req := execRequest("db", dir, map[string]any{"restore": []string{"./restore.sh"}, "dir": "sub", "env": map[string]string{"GREETING": "hello"}})
	req.Drill = true
	rec := sdk.NewRecorder()
	if err := (&Exec{}).Restore(context.Background(), req, rec.Stream); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	var logs []string
	for _, ev := range rec.Events() {
		if ev.Kind == "log" {
			logs = append(logs, string(ev.Level)+": "+ev.Message)
		}
	}
	want := []string{"info: node db attempt 1 drill 1 in sub hello", "warn: careful", "warn: REPRISE_OUTPUT line 2: want KEY=VALUE, ignored"}
	// stdout and stderr are two pipes read side by side: their lines may
	// come in either order.
	slices.Sort(logs)
	slices.Sort(want)
	if !slices.Equal(logs, want) {
		t.Errorf("logs\n got %q\nwant %q", logs, want)
	}
	if got := rec.Outputs(); len(got) != 1 || got["host"] != "db1" {
		t.Errorf("outputs = %v, want host=db1", got)
	}
	if got := rec.Message(); got != "restore command restore.sh exited 0" {
		t.Errorf("message = %q", got)
	}
}

// TestExecRestoreFails: a non-zero exit fails with the last lines of output
// and never echoes the arguments (they may hold secrets).
func TestExecRestoreFails(t *testing.T) {
	dir := t.TempDir()
	mustScript(t, dir, "fail.sh", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i; done\nexit 3\n")
	rec := sdk.NewRecorder()
	err := (&Exec{}).Restore(context.Background(), execRequest("n", dir, map[string]any{"restore": []string{"./fail.sh", "s3cr3t"}}), rec.Stream)
	if err == nil {
		t.Fatal("Restore of a command exiting 3: no error")
	}
	msg := err.Error()
	for _, want := range []string{"restore command fail.sh", "exit status 3", "line 12", "line 3\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "line 2\n") || strings.Contains(msg, "s3cr3t") {
		t.Errorf("error %q quotes more than the last %d lines, or the arguments", msg, tailLines)
	}
	_, err = (&Exec{}).Check(context.Background(), execRequest("n", dir, map[string]any{"restore": []string{"x"}, "check": []string{"./missing.sh"}}))
	if err == nil || !strings.Contains(err.Error(), "start command missing.sh") {
		t.Errorf("Check with a missing command: err = %v, want one naming it", err)
	}
}

func TestExecDryRun(t *testing.T) {
	dir := t.TempDir()
	mustScript(t, dir, "touch.sh", "touch touched\n")
	req := execRequest("n", dir, map[string]any{"restore": []string{"./touch.sh"}})
	req.DryRun = true
	rec := sdk.NewRecorder()
	if err := (&Exec{}).Restore(context.Background(), req, rec.Stream); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "touched")); err == nil {
		t.Error("a dry run ran the command")
	}
	if rec.Message() != "dry run: would run touch.sh" {
		t.Errorf("message = %q", rec.Message())
	}
}

func TestExecCheckAndVerify(t *testing.T) {
	dir := t.TempDir()
	mustScript(t, dir, "up.sh", "echo url=http://x >> \"$REPRISE_OUTPUT\"\n")
	mustScript(t, dir, "down.sh", "echo refused\nexit 1\n")
	ctx := context.Background()
	cfg := func(kind, script string) map[string]any {
		c := map[string]any{"restore": []string{"true"}}
		if script != "" {
			c[kind] = []string{script}
		}
		return c
	}
	tests := []struct {
		name, kind, script string
		restored           bool
		outputs            map[string]string
		message            string
	}{
		{"check up", "check", "./up.sh", true, map[string]string{"url": "http://x"}, "check command up.sh exited 0"},
		{"check down", "check", "./down.sh", false, nil, "check command down.sh: exit status 1; last output:\nrefused"},
		{"no check", "check", "", false, nil, "no check command"},
		{"verify up", "verify", "./up.sh", true, map[string]string{"url": "http://x"}, "verify command up.sh exited 0"},
		{"verify down", "verify", "./down.sh", false, nil, "verify command down.sh: exit status 1; last output:\nrefused"},
		{"no verify", "verify", "", true, nil, "no verify command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := execRequest("n", dir, cfg(tt.kind, tt.script))
			var ok bool
			var outputs map[string]string
			var msg string
			if tt.kind == "check" {
				res, err := (&Exec{}).Check(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				ok, outputs, msg = res.Restored, res.Outputs, res.Message
			} else {
				res, err := (&Exec{}).Verify(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				ok, outputs, msg = !res.Failed, res.Outputs, res.Message
				if !ok {
					outputs = nil
				}
			}
			if ok != tt.restored || msg != tt.message || len(outputs) != len(tt.outputs) || (len(outputs) > 0 && outputs["url"] != tt.outputs["url"]) {
				t.Errorf("got %v %v %q, want %v %v %q", ok, outputs, msg, tt.restored, tt.outputs, tt.message)
			}
		})
	}
}

// TestExecCancel: cancelling a restore ends the command's whole process
// group at once (SIGTERM), not when the command would have finished.
func TestExecCancel(t *testing.T) {
	dir := t.TempDir()
	mustScript(t, dir, "slow.sh", "sleep 30 &\nwait\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	err := (&Exec{}).Restore(ctx, execRequest("n", dir, map[string]any{"restore": []string{"./slow.sh"}}), sdk.NewRecorder().Stream)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled Restore: err = %v, want context canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelled Restore took %s: the process group was not ended", d)
	}
}

func TestExecBadWorkDir(t *testing.T) {
	req := execRequest("n", t.TempDir(), map[string]any{"restore": []string{"true"}, "dir": "nowhere"})
	err := (&Exec{}).Restore(context.Background(), req, sdk.NewRecorder().Stream)
	if err == nil || !strings.Contains(err.Error(), "nowhere: not a folder") {
		t.Errorf("err = %v, want the missing folder named", err)
	}
}
