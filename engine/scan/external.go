package scan

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// maxExternalFindings bounds what is parsed from a command's output.
const maxExternalFindings = 100000

// runYARA runs the yara command over target (a folder, recursively,
// without following links) and returns one finding per rule matched per
// file. A rule tagged "suspicious" gives a Suspicious finding, any other a
// Compromised one.
func runYARA(ctx context.Context, sp Spec, target string, threads int) ([]Finding, error) {
	args := []string{"--recursive", "--no-follow-symlinks", "--no-warnings", "--print-tags",
		"--threads=" + strconv.Itoa(max(threads, 1))}
	for i, r := range sp.Rules {
		// A namespace prefix keeps a ':' in the path from being read as one.
		args = append(args, fmt.Sprintf("rules%d:%s", i, r))
	}
	args = append(args, target)
	var out []Finding
	err := runLines(ctx, Command[TypeYARA], args, func(line string) {
		// RULE [tag,tag] PATH
		rule, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(rest, "[") {
			return
		}
		tags, file, ok := strings.Cut(rest[1:], "] ")
		if !ok {
			return
		}
		v := Compromised
		for _, t := range strings.Split(tags, ",") {
			if t == "suspicious" {
				v = Suspicious
			}
		}
		out = append(out, Finding{File: relOf(target, file), Rule: rule, Verdict: v, Detail: "YARA rule matched"})
	}, func(code int) bool { return code == 0 })
	return out, err
}

// runClamAV runs clamscan with the spec's database only (no freshclam
// database is needed) and returns one finding per signature found.
func runClamAV(ctx context.Context, sp Spec, target string) ([]Finding, error) {
	args := []string{"--recursive=yes", "--infected", "--no-summary", "--stdout",
		"--follow-dir-symlinks=0", "--follow-file-symlinks=0", "--database=" + sp.Database, target}
	var out []Finding
	err := runLines(ctx, Command[TypeClamAV], args, func(line string) {
		// PATH: SIGNATURE FOUND
		body, ok := strings.CutSuffix(line, " FOUND")
		if !ok {
			return
		}
		i := strings.LastIndex(body, ": ")
		if i < 0 {
			return
		}
		out = append(out, Finding{File: relOf(target, body[:i]), Rule: body[i+2:], Verdict: Compromised, Detail: "ClamAV signature matched"})
	}, func(code int) bool { return code == 0 || code == 1 }) // 1: something found
	return out, err
}

// runLines runs name with args, feeding each line of its standard output
// to fn (at most maxExternalFindings), and fails unless ok accepts the
// exit code; the error carries the end of its standard error.
func runLines(ctx context.Context, name string, args []string, fn func(string), ok func(int) bool) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	var other tailBuffer // lines that are no finding: warnings, errors
	for sc.Scan() {
		if n < maxExternalFindings {
			fn(sc.Text())
			n++
		}
		if !strings.HasSuffix(sc.Text(), " FOUND") && !strings.Contains(sc.Text(), "] ") {
			other.Write(append(sc.Bytes(), '\n'))
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		if ee, isExit := err.(*exec.ExitError); isExit && ok(ee.ExitCode()) {
			return nil
		}
		msg := strings.TrimSpace(stderr.String() + "\n" + other.String())
		if msg == "" {
			msg = "no message"
		}
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 4096 {
		rest := t.b.Bytes()[t.b.Len()-4096:]
		nb := bytes.Clone(rest)
		t.b.Reset()
		t.b.Write(nb)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.b.String() }
