package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Exec runs commands: `with: {restore: [argv…], check: [argv…], verify:
// [argv…], env: {K: V}, dir: …}`. The working directory defaults to the
// graph file's folder (a relative dir resolves from it). Each command gets
// REPRISE_RUN, REPRISE_NODE, REPRISE_ATTEMPT, REPRISE_OUTPUT (a file
// where `KEY=VALUE` lines become the node's outputs) and REPRISE_DRILL (1 in
// a drill run: restore into the exercise environment; else 0) in its
// environment.
// Restore streams stdout and stderr as log lines (info and warn); a
// non-zero exit fails the step with the last lines of output. `check` exiting 0 means "already
// restored". A cancelled call ends the command's whole process group.
//
// The argv and env may hold resolved secrets: Exec never echoes them; only
// the command's own output and the program's base name appear in messages.
//
// Processes a command leaves running in the background stay in the plugin's
// session and are ended when reprise closes the plugin: a restore step that
// starts a long-lived service must detach it into its own session (setsid).
type Exec struct{}

var (
	_ sdk.Plugin    = (*Exec)(nil)
	_ sdk.Checker   = (*Exec)(nil)
	_ sdk.Verifier  = (*Exec)(nil)
	_ sdk.Validator = (*Exec)(nil)
)

type execConfig struct {
	Restore []string          `json:"restore" required:"true" desc:"command run to restore the node (argv list)"`
	Check   []string          `json:"check" desc:"command telling whether the node is already restored (exit 0: restored)"`
	Verify  []string          `json:"verify" desc:"health check run after the restore (exit 0: healthy)"`
	Env     map[string]string `json:"env" desc:"extra environment variables"`
	Dir     string            `json:"dir" desc:"working directory (default: the graph file's folder)"`
}

// tailLines is how many last lines of output a failure message quotes.
const tailLines = 10

// killGrace is how long a cancelled command gets between SIGTERM and SIGKILL.
const killGrace = 3 * time.Second

// Describe says what exec is.
func (*Exec) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "exec", Version: Version, Description: "runs commands (restore, check, verify)",
		Fields: sdk.FieldsOf(execConfig{})}, nil
}

// Validate checks the config's fields and that the argv lists are not empty.
func (*Exec) Validate(_ context.Context, req *sdk.Request) ([]string, error) {
	_, problems := decodeExec(req)
	return problems, nil
}

func decodeExec(req *sdk.Request) (*execConfig, []string) {
	var cfg execConfig
	if err := req.Decode(&cfg); err != nil {
		return nil, splitJoined(err)
	}
	var problems []string
	if len(cfg.Restore) == 0 || cfg.Restore[0] == "" {
		problems = append(problems, "with.restore: want a command, a non-empty list such as [\"./restore.sh\", \"--full\"]")
	}
	for _, f := range []struct {
		name string
		argv []string
	}{{"check", cfg.Check}, {"verify", cfg.Verify}} {
		if f.argv != nil && (len(f.argv) == 0 || f.argv[0] == "") {
			problems = append(problems, fmt.Sprintf("with.%s: want a command, a non-empty list", f.name))
		}
	}
	for k := range cfg.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			problems = append(problems, fmt.Sprintf("with.env: invalid variable name %q", k))
		}
	}
	if problems != nil {
		return nil, problems
	}
	return &cfg, nil
}

// splitJoined lists the messages of an errors.Join result.
func splitJoined(err error) []string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func configError(problems []string) error { return errors.New(strings.Join(problems, "; ")) }

// Restore runs the restore command.
func (*Exec) Restore(ctx context.Context, req *sdk.Request, s *sdk.Stream) error {
	cfg, problems := decodeExec(req)
	if cfg == nil {
		return configError(problems)
	}
	if req.DryRun {
		s.SetMessage(fmt.Sprintf("dry run: would run %s", filepath.Base(cfg.Restore[0])))
		return nil
	}
	res, err := runCommand(ctx, req, cfg, cfg.Restore, func(stream, line string) {
		level := sdk.LevelInfo
		if stream == "stderr" {
			level = sdk.LevelWarn
		}
		s.Log(level, line)
	})
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(res.outputs) {
		s.Output(k, res.outputs[k])
	}
	for _, w := range res.warnings {
		s.Warnf("%s", w)
	}
	if res.exitErr != nil {
		return fmt.Errorf("restore command %s: %s%s", filepath.Base(cfg.Restore[0]), res.exitErr, res.tailText())
	}
	s.SetMessage(fmt.Sprintf("restore command %s exited 0", filepath.Base(cfg.Restore[0])))
	return nil
}

// Check runs the check command: exit 0 means restored. Without one, the
// node is not restored.
func (*Exec) Check(ctx context.Context, req *sdk.Request) (sdk.CheckResult, error) {
	cfg, problems := decodeExec(req)
	if cfg == nil {
		return sdk.CheckResult{}, configError(problems)
	}
	if cfg.Check == nil {
		return sdk.CheckResult{Restored: false, Message: "no check command"}, nil
	}
	res, err := runCommand(ctx, req, cfg, cfg.Check, nil)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	if res.exitErr != nil {
		return sdk.CheckResult{Restored: false, Message: fmt.Sprintf("check command %s: %s%s", filepath.Base(cfg.Check[0]), res.exitErr, res.tailText())}, nil
	}
	return sdk.CheckResult{Restored: true, Outputs: res.outputs,
		Message: fmt.Sprintf("check command %s exited 0", filepath.Base(cfg.Check[0]))}, nil
}

// Verify runs the verify command: exit 0 means healthy. Without one,
// verification succeeds.
func (*Exec) Verify(ctx context.Context, req *sdk.Request) (sdk.Result, error) {
	cfg, problems := decodeExec(req)
	if cfg == nil {
		return sdk.Result{}, configError(problems)
	}
	if cfg.Verify == nil {
		return sdk.Result{Message: "no verify command"}, nil
	}
	res, err := runCommand(ctx, req, cfg, cfg.Verify, nil)
	if err != nil {
		return sdk.Result{}, err
	}
	if res.exitErr != nil {
		return sdk.Result{Failed: true, Outputs: res.outputs,
			Message: fmt.Sprintf("verify command %s: %s%s", filepath.Base(cfg.Verify[0]), res.exitErr, res.tailText())}, nil
	}
	return sdk.Result{Outputs: res.outputs, Message: fmt.Sprintf("verify command %s exited 0", filepath.Base(cfg.Verify[0]))}, nil
}

// cmdResult is what a finished command left.
type cmdResult struct {
	exitErr  error // non-nil: the command failed (exit status, signal)
	tail     []string
	outputs  map[string]string
	warnings []string
}

func (r *cmdResult) tailText() string {
	if len(r.tail) == 0 {
		return ""
	}
	return "; last output:\n" + strings.Join(r.tail, "\n")
}

// runCommand runs argv for req and collects its output lines (passed to
// onLine as they come, when set), its last lines and its outputs file. The
// error is about running at all (not found, cancelled); a command that ran
// and failed sets exitErr.
func runCommand(ctx context.Context, req *sdk.Request, cfg *execConfig, argv []string, onLine func(stream, line string)) (*cmdResult, error) {
	dir := req.WorkDir
	if cfg.Dir != "" {
		dir = cfg.Dir
		if !filepath.IsAbs(dir) && req.WorkDir != "" {
			dir = filepath.Join(req.WorkDir, dir)
		}
	}
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("working directory %s: not a folder", dir)
		}
	}
	outFile, err := os.CreateTemp("", "reprise-output-*")
	if err != nil {
		return nil, fmt.Errorf("create output file: %w", err)
	}
	outPath := outFile.Name()
	outFile.Close()
	defer os.Remove(outPath)

	prog := argv[0]
	if !strings.Contains(prog, "/") {
		// A bare name is looked up in PATH; ./x and dir/x are relative to dir.
	} else if !filepath.IsAbs(prog) && dir != "" {
		prog = filepath.Join(dir, prog)
	}
	cmd := exec.Command(prog, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envList(cfg.Env)...)
	cmd.Env = append(cmd.Env,
		"REPRISE_RUN="+req.RunID, "REPRISE_NODE="+req.NodeID,
		"REPRISE_ATTEMPT="+strconv.Itoa(req.Attempt), "REPRISE_OUTPUT="+outPath,
		"REPRISE_DRILL="+drillFlag(req.Drill))
	if rp := req.RestorePoint; rp != nil {
		cmd.Env = append(cmd.Env, "REPRISE_RESTORE_POINT="+rp.ID, "REPRISE_RESTORE_PATH="+rp.Path,
			"REPRISE_RESTORE_POINT_TIME="+rp.Time.UTC().Format(time.RFC3339))
	}
	newGroup(cmd)
	res := &cmdResult{}
	var mu sync.Mutex
	line := func(stream, l string) {
		mu.Lock()
		defer mu.Unlock()
		res.tail = append(res.tail, l)
		if len(res.tail) > tailLines {
			res.tail = res.tail[1:]
		}
		if onLine != nil {
			onLine(stream, l)
		}
	}
	stdout := &lineSink{stream: "stdout", line: line}
	stderr := &lineSink{stream: "stderr", line: line}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A background process that keeps the pipes open must not hold the step.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start command %s: %w", filepath.Base(argv[0]), unwrapExec(err))
	}
	stop := context.AfterFunc(ctx, func() { endGroup(cmd.Process.Pid, killGrace) })
	defer stop()
	res.exitErr = cmd.Wait()
	stdout.flush()
	stderr.flush()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.outputs, res.warnings = readOutputs(outPath)
	return res, nil
}

// unwrapExec keeps the reason of a start failure without the full path
// exec.Error repeats (which is the argv the user wrote anyway).
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readOutputs parses the KEY=VALUE lines of a command's outputs file; other
// non-empty lines (except # comments) become warnings.
func readOutputs(path string) (map[string]string, []string) {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out, []string{"read outputs file: " + err.Error()}
	}
	var warnings []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			warnings = append(warnings, fmt.Sprintf("REPRISE_OUTPUT line %d: want KEY=VALUE, ignored", i+1))
			continue
		}
		out[k] = v
	}
	return out, warnings
}

// lineSink splits what a command writes into lines.
type lineSink struct {
	stream string
	line   func(stream, line string)
	buf    []byte
}

func (w *lineSink) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.stream, strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.flush()
	}
	return len(b), nil
}

// flush passes on a last line without a newline.
func (w *lineSink) flush() {
	if len(w.buf) > 0 {
		w.line(w.stream, string(w.buf))
		w.buf = w.buf[:0]
	}
}

// drillFlag is REPRISE_DRILL's value.
func drillFlag(drill bool) string {
	if drill {
		return "1"
	}
	return "0"
}
