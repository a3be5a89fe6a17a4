package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Exec runs commands: `with: {restore: [argv…], check: [argv…], verify:
// [argv…], env: {K: V}, dir: …}`. The working directory defaults to the
// graph file's folder (a relative dir resolves from it). Each command gets
// REPRISE_RUN, REPRISE_NODE, REPRISE_ATTEMPT, REPRISE_OUTPUT (a file, in
// a folder only the plugin's user can enter, that the command creates or
// appends to, `>> "$REPRISE_OUTPUT"`, where `KEY=VALUE` lines become the
// node's outputs) and REPRISE_DRILL (1 in
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

// decodedConfigs remembers valid configs by their JSON (at most
// maxDecodedConfigs, then it starts over): a node's config is decoded for
// its check, restore and verify, and generated graphs repeat theirs. A
// remembered config is shared: nothing changes one once decoded.
var decodedConfigs struct {
	sync.Mutex
	m map[string]*execConfig
}

const maxDecodedConfigs = 512

func decodeExec(req *sdk.Request) (*execConfig, []string) {
	decodedConfigs.Lock()
	cfg := decodedConfigs.m[string(req.ConfigJSON)]
	decodedConfigs.Unlock()
	if cfg != nil {
		return cfg, nil
	}
	cfg, problems := decodeExecConfig(req)
	if cfg != nil {
		decodedConfigs.Lock()
		if len(decodedConfigs.m) >= maxDecodedConfigs || decodedConfigs.m == nil {
			decodedConfigs.m = make(map[string]*execConfig)
		}
		decodedConfigs.m[string(req.ConfigJSON)] = cfg
		decodedConfigs.Unlock()
	}
	return cfg, problems
}

func decodeExecConfig(req *sdk.Request) (*execConfig, []string) {
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
	if res.outputErr != nil {
		return fmt.Errorf("node %q: %w", req.NodeID, res.outputErr)
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
	if res.outputErr != nil {
		return sdk.CheckResult{}, fmt.Errorf("node %q: check: %w", req.NodeID, res.outputErr)
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
	if res.outputErr != nil {
		return sdk.Result{Failed: true, Message: fmt.Sprintf("node %q: verify: %v", req.NodeID, res.outputErr)}, nil
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
	// outputErr: the outputs file could not be taken (too big): the step
	// fails with it and stores nothing.
	outputErr error
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
	stdin, err := devNull()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	outPath, err := outputs.take()
	if err != nil {
		return nil, err
	}
	defer outputs.done(outPath)

	prog := argv[0]
	if !strings.Contains(prog, "/") {
		// A bare name is looked up in PATH (the plugin's, as os/exec does).
		if prog, err = lookPath(prog); err != nil {
			return nil, fmt.Errorf("start command %s: %w", filepath.Base(argv[0]), unwrapExec(err))
		}
	} else if !filepath.IsAbs(prog) && dir != "" {
		// ./x and dir/x are relative to dir.
		prog = filepath.Join(dir, prog)
	}
	own := []string{"REPRISE_RUN=" + req.RunID, "REPRISE_NODE=" + req.NodeID,
		"REPRISE_ATTEMPT=" + strconv.Itoa(req.Attempt), "REPRISE_OUTPUT=" + outPath,
		"REPRISE_DRILL=" + drillFlag(req.Drill)}
	if rp := req.RestorePoint; rp != nil {
		own = append(own, "REPRISE_RESTORE_POINT="+rp.ID, "REPRISE_RESTORE_PATH="+rp.Path,
			"REPRISE_RESTORE_POINT_TIME="+rp.Time.UTC().Format(time.RFC3339))
	}
	spec := spawnSpec{path: prog, argv: argv, dir: dir, env: commandEnv(cfg.Env, own)}
	res := &cmdResult{}
	var (
		mu             sync.Mutex
		logged         int
		dropped, bytes int64
	)
	line := func(stream, l string) {
		mu.Lock()
		defer mu.Unlock()
		if len(l) > maxTailLine {
			res.tail = append(res.tail, l[:maxTailLine]+" …")
		} else {
			res.tail = append(res.tail, l)
		}
		if len(res.tail) > tailLines {
			res.tail = res.tail[1:]
		}
		if onLine == nil {
			return
		}
		if logged >= maxLogLines {
			dropped++
			bytes += int64(len(l))
			return
		}
		logged++
		onLine(stream, l)
	}
	conv := &converter{}
	stdout := &lineSink{stream: "stdout", line: line, conv: conv}
	stderr := &lineSink{stream: "stderr", line: line, conv: conv}
	exitErr, err := runProcess(ctx, spec, stdin, stdout, stderr)
	if err != nil {
		return nil, fmt.Errorf("start command %s: %w", filepath.Base(argv[0]), unwrapExec(err))
	}
	res.exitErr = exitErr
	stdout.flush()
	stderr.flush()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if dropped > 0 {
		onLine("stderr", fmt.Sprintf("%d more output lines (%d bytes) not logged: over the %d lines a command logs", dropped, bytes, maxLogLines))
	}
	if conv.used() {
		res.warnings = append(res.warnings, fmt.Sprintf("output of %s is not valid UTF-8: its invalid bytes were read as Windows-1252 (Latin-1)", filepath.Base(argv[0])))
	}
	var outWarnings []string
	res.outputs, outWarnings, res.outputErr = readOutputs(outPath)
	res.warnings = append(res.warnings, outWarnings...)
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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readOutputs parses the KEY=VALUE lines of a command's outputs file; other
// non-empty lines (except # comments) become warnings. A file over
// sdk.MaxOutputBytes is refused unread (the error names its size); values
// that are not valid UTF-8 are read as Windows-1252, said once.
func readOutputs(path string) (map[string]string, []string, error) {
	out := map[string]string{}
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode().IsRegular() && fi.Size() == 0) {
		return out, nil, nil // what most commands leave: nothing to open
	}
	f, err := os.Open(path)
	if err != nil {
		return out, []string{"read outputs file: " + err.Error()}, nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > sdk.MaxOutputBytes {
		return nil, nil, fmt.Errorf("REPRISE_OUTPUT file is %d bytes, over the %d bytes a step may set as outputs; nothing stored", fi.Size(), sdk.MaxOutputBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, sdk.MaxOutputBytes+1))
	if err != nil {
		return out, []string{"read outputs file: " + err.Error()}, nil
	}
	if len(b) > sdk.MaxOutputBytes {
		return nil, nil, fmt.Errorf("REPRISE_OUTPUT file is over the %d bytes a step may set as outputs; nothing stored", sdk.MaxOutputBytes)
	}
	var warnings []string
	legacy := false
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if !utf8.ValidString(line) {
			line, legacy = legacyText([]byte(line)), true
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			warnings = append(warnings, fmt.Sprintf("REPRISE_OUTPUT line %d: want KEY=VALUE, ignored", i+1))
			continue
		}
		out[k] = v
	}
	if legacy {
		warnings = append(warnings, "REPRISE_OUTPUT is not valid UTF-8: its invalid bytes were read as Windows-1252 (Latin-1)")
	}
	return out, warnings, nil
}

// maxLogLines is how many output lines of one command are logged; the rest
// are counted (the last ones still show in a failure's message).
const maxLogLines = 10000

// maxTailLine is the longest line a failure message quotes.
const maxTailLine = 512

// maxLine is the longest output line exec passes on; the rest of a longer
// line is dropped, the cut said at its end.
const maxLine = 8 << 10

// lineSink splits what a command writes into lines, each cut to maxLine
// bytes and made valid UTF-8 (see legacyText). Its buffer never holds more
// than one cut line: a command that prints faster than the host takes the
// lines waits (its pipe fills), it does not grow memory.
type lineSink struct {
	stream string
	line   func(stream, line string)
	conv   *converter
	buf    []byte
	cut    int // bytes dropped from the line in buf
}

func (w *lineSink) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if room := maxLine - len(w.buf); room > 0 {
			w.buf = append(w.buf, part[:min(len(part), room)]...)
			w.cut += len(part) - min(len(part), room)
		} else {
			w.cut += len(part)
		}
		if i < 0 {
			break
		}
		w.emit()
		b = b[i+1:]
	}
	return n, nil
}

// emit passes on the line in buf.
func (w *lineSink) emit() {
	text := w.conv.text(bytes.TrimRight(w.buf, "\r"))
	if w.cut > 0 {
		text += fmt.Sprintf(" … [cut: %d more bytes]", w.cut)
	}
	w.line(w.stream, text)
	w.buf, w.cut = w.buf[:0], 0
}

// flush passes on a last line without a newline.
func (w *lineSink) flush() {
	if len(w.buf) > 0 || w.cut > 0 {
		w.emit()
	}
}

// converter makes a command's bytes valid UTF-8 and remembers whether it
// had to: hospital software often writes Latin-1 or Windows-1252.
type converter struct {
	mu        sync.Mutex
	converted bool
}

// text returns b as valid UTF-8: a byte that is not part of a valid UTF-8
// sequence is read as Windows-1252 (a superset of Latin-1's printable
// characters), so that "Fran\xe7ois" reads "François"; the five bytes
// Windows-1252 leaves undefined become U+FFFD.
func (c *converter) text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	c.mu.Lock()
	c.converted = true
	c.mu.Unlock()
	return legacyText(b)
}

func (c *converter) used() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.converted
}

func legacyText(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			sb.WriteRune(charmap.Windows1252.DecodeByte(b[0]))
			b = b[1:]
			continue
		}
		sb.Write(b[:size])
		b = b[size:]
	}
	return sb.String()
}

// drillFlag is REPRISE_DRILL's value.
func drillFlag(drill bool) string {
	if drill {
		return "1"
	}
	return "0"
}
