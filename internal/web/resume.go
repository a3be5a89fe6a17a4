package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

// A resume started from the dashboard runs as a process of its own,
// `reprise resume RUN --by OPERATOR [--wait]` (Options.Reprise; with the
// state's connection settings of Options.ResumeArgs, e.g. the etcd TLS
// files), never in the server's process:
//
//   - that process is the state file's only writer while it runs (it holds
//     the file's lock, as any resume does) and serves its control socket:
//     the dashboard reads the run and sends actions through it, like
//     another terminal would;
//   - it is started in a process group of its own, with its output
//     appended to STATE.resume.log (not a pipe to the server): stopping or
//     losing the server (Ctrl-C, a crash, an upgrade) does not stop the
//     rebuild, and a crash of either never leaves the state file
//     half-written (every change is one bbolt transaction). It is stopped
//     like any run: SIGINT to its pid (drains), twice (cancels);
//   - the run-resumed journal entry names the operator (By), and the
//     resume checks the run against its journal (and --anchor) before it
//     writes anything, as on the command line;
//   - it is given the operator's own token (the session's, or the API
//     request's Bearer) through a pipe, REPRISE_TOKEN_FILE=/dev/fd/3, never
//     its environment or arguments (which other processes of the machine's
//     user may read): on an etcd state with operators, the resume is
//     authorized as if that operator typed it, no more.
//
// The server answers once the run is seen going on through the socket, or
// the process has ended (a resume with nothing left to do, or a refusal,
// whose output the answer quotes).

// resumes are the resumes this server started, by run: one at a time.
type resumes struct {
	mu      sync.Mutex
	running map[string]int // run → pid
}

// resumeSeen bounds how long a resume request waits to see its run going
// on before it answers "started" without having seen it.
const resumeSeen = 30 * time.Second

// resumeOutcome is the answer to a resume request.
type resumeOutcome struct {
	Result string `json:"result"`
	By     string `json:"by"`
	PID    int    `json:"pid"`
	// Live: the run is going on in process PID. Otherwise that process has
	// already ended, having resumed the run (Exit 0, 3, 4, 130: run's exit
	// codes) — or it is still starting.
	Live bool `json:"live"`
	Exit *int `json:"exit,omitempty"`
}

// resume starts `reprise resume` of run runID as op (with wait, --wait).
func (s *Server) resume(ctx context.Context, runID string, op state.Operator, wait bool) (resumeOutcome, error) {
	if s.opts.Reprise == "" {
		return resumeOutcome{}, fmt.Errorf("resume run %q: %w", runID, errNoResume)
	}
	if err := s.resumable(runID); err != nil {
		return resumeOutcome{}, err
	}
	s.resumes.mu.Lock()
	if pid, ok := s.resumes.running[runID]; ok {
		s.resumes.mu.Unlock()
		return resumeOutcome{}, fmt.Errorf("resume run %q: a resume started here is still going on (pid %d): %w", runID, pid, errNotApplicable)
	}
	if s.resumes.running == nil {
		s.resumes.running = map[string]int{}
	}
	s.resumes.running[runID] = 0
	s.resumes.mu.Unlock()
	started := false
	defer func() {
		if !started {
			s.resumes.mu.Lock()
			delete(s.resumes.running, runID)
			s.resumes.mu.Unlock()
		}
	}()

	outPath := strings.TrimSuffix(s.logPath(), ".log") + ".resume.log"
	out, err := state.OpenAppend(outPath)
	if err != nil {
		return resumeOutcome{}, fmt.Errorf("resume run %q: %w", runID, err)
	}
	defer out.Close()
	from, _ := out.Seek(0, io.SeekEnd)
	args := []string{"resume", runID, "--state", s.opts.StatePath, "--quiet", "--by", op.Name}
	if wait {
		args = append(args, "--wait")
	}
	if s.opts.Anchor != "" {
		args = append(args, "--anchor", s.opts.Anchor)
	}
	args = append(args, s.opts.ResumeArgs...)
	cmd := exec.Command(s.opts.Reprise, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not stopped with the server
	tokenPipe, err := giveToken(cmd, tokenOf(ctx))
	if err != nil {
		return resumeOutcome{}, fmt.Errorf("resume run %q: %w", runID, err)
	}
	err = cmd.Start()
	if tokenPipe != nil {
		tokenPipe.Close() // the child has its copy
	}
	if err != nil {
		return resumeOutcome{}, fmt.Errorf("resume run %q: start %s: %w", runID, s.opts.Reprise, err)
	}
	started = true
	pid := cmd.Process.Pid
	s.resumes.mu.Lock()
	s.resumes.running[runID] = pid
	s.resumes.mu.Unlock()
	s.logf("resume of run %s by %s started: pid %d (output in %s)", runID, op.Name, pid, outPath)
	exited := make(chan int, 1)
	go func() { // reap it, whenever it ends
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		s.resumes.mu.Lock()
		delete(s.resumes.running, runID)
		s.resumes.mu.Unlock()
		s.logf("resume of run %s by %s (pid %d) ended: %v", runID, op.Name, pid, exitText(err))
		exited <- code
	}()

	res := resumeOutcome{By: op.Name, PID: pid}
	deadline := time.Now().Add(resumeSeen)
	for time.Now().Before(deadline) {
		select {
		case code := <-exited:
			return s.ended(runID, res, code, outPath, from)
		case <-ctx.Done():
			res.Result = fmt.Sprintf("resume of run %s started by %s (pid %d)", runID, op.Name, pid)
			return res, nil
		case <-time.After(50 * time.Millisecond):
		}
		if s.liveRun() == runID {
			res.Live = true
			res.Result = fmt.Sprintf("run %s resumed by %s: going on in process %d", runID, op.Name, pid)
			return res, nil
		}
	}
	res.Result = fmt.Sprintf("resume of run %s started by %s (pid %d); not seen going on yet", runID, op.Name, pid)
	return res, nil
}

// ended answers for a resume process that ended before it was seen going
// on: run's exit codes 0, 3, 4 and 130 say the run was resumed and
// stopped again (done, failed nodes, parked, interrupted); any other is a
// refusal, quoted from its output.
func (s *Server) ended(runID string, res resumeOutcome, code int, outPath string, from int64) (resumeOutcome, error) {
	res.Exit = &code
	switch code {
	case 0, 3, 4, 130:
		status := "stopped"
		if run, err := s.readRun(runID); err == nil {
			status = string(run.Status)
		}
		res.Result = fmt.Sprintf("run %s resumed by %s (process %d), and already %s", runID, res.By, res.PID, status)
		return res, nil
	}
	msg := outputSince(outPath, from)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", code)
	}
	return res, &resumeError{run: runID, msg: msg}
}

// resumeError is a resume process that refused to resume (its output).
type resumeError struct{ run, msg string }

func (e *resumeError) Error() string { return fmt.Sprintf("resume run %q: %s", e.run, e.msg) }

// Unwrap makes it a 409: the run cannot be resumed as it stands.
func (e *resumeError) Unwrap() error { return errNotApplicable }

// resumable checks, before starting anything, that run runID exists, is
// not done, and that no process holds the state file.
func (s *Server) resumable(runID string) error {
	if s.opts.Backend == nil {
		if c, err := control.Dial(control.SocketPath(s.opts.StatePath)); err == nil {
			live, _ := c.Live()
			if live == runID {
				return fmt.Errorf("resume run %q: it is going on already: %w", runID, errNotApplicable)
			}
			return fmt.Errorf("resume run %q: the state file is held by another reprise process (running %q); resume once it has ended: %w", runID, live, errNotApplicable)
		}
	} else if s.liveRun() == runID {
		return fmt.Errorf("resume run %q: it is going on already: %w", runID, errNotApplicable)
	}
	run, err := s.readRun(runID)
	if err != nil {
		return err
	}
	switch {
	case run.Cleanup != nil:
		return fmt.Errorf("resume run %q: a drill whose clean-up is recorded (by %s): %w", runID, run.Cleanup.By, errNotApplicable)
	case run.Status == state.RunSucceeded:
		return fmt.Errorf("resume run %q: it has succeeded, nothing to resume: %w", runID, errNotApplicable)
	}
	return nil
}

// liveRun is the run a process is running on the state now ("" if none):
// through the control socket of the process that holds the file, or
// Options.Live with a Backend.
func (s *Server) liveRun() string {
	if s.opts.Backend != nil {
		if s.opts.Live == nil {
			return ""
		}
		return s.opts.Live()
	}
	c, err := control.Dial(control.SocketPath(s.opts.StatePath))
	if err != nil {
		return ""
	}
	live, _ := c.Live()
	return live
}

// readRun reads run runID's record.
func (s *Server) readRun(runID string) (state.Run, error) {
	if s.opts.Backend != nil {
		return s.opts.Backend.Run(runID)
	}
	r, err := control.Open(s.opts.StatePath)
	if err != nil {
		return state.Run{}, err
	}
	defer r.Close()
	return r.Run(runID)
}

// outputSince returns the last lines a resume process wrote to path after
// offset from (at most 2 KiB), trimmed.
func outputSince(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-from > 2048 {
		from = fi.Size() - 2048
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return strings.TrimSpace(string(b))
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// errNoResume is returned when the server was given no reprise binary to
// run resumes with (Options.Reprise).
var errNoResume = errors.New("this dashboard does not resume runs (serve it with `reprise serve`)")

// giveToken has cmd read the operator's token from a pipe, its fd 3
// (REPRISE_TOKEN_FILE=/dev/fd/3), written and closed here; a token the
// server's own environment holds is not passed on. It returns the pipe's
// read end, to close once cmd has started (nil: no token to give).
func giveToken(cmd *exec.Cmd, token string) (*os.File, error) {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REPRISE_TOKEN=") && !strings.HasPrefix(kv, "REPRISE_TOKEN_FILE=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if token == "" {
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("a pipe for the operator's token: %w", err)
	}
	// A token is far below a pipe's buffer: written whole before the
	// child starts, then closed, so that it reads to the end.
	_, err = io.WriteString(w, token+"\n")
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("pass the operator's token: %w", err)
	}
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = append(cmd.Env, "REPRISE_TOKEN_FILE=/dev/fd/3")
	return r, nil
}
