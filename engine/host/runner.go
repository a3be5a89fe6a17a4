package host

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
	"go.uber.org/zap"
)

// maxHandshakeLine is the longest first stdout line handed to go-plugin as
// the handshake (a real one is about 1 KiB with its certificate); the rest
// of a longer line is read and dropped.
const maxHandshakeLine = 16 << 10

// procRunner runs one plugin process for go-plugin (its runner.Runner).
// reprise owns the process and both of its pipes: go-plugin only ever sees
// the first stdout line (the handshake, capped) and an empty stderr, so
// nothing a plugin writes reaches go-plugin's parsers (which panic on some
// JSON lines, and block on long ones). Everything else the process writes is
// read here, at once, line by line with each line capped, logged within a
// budget, and kept in the crash tail. Reading never waits for the logger to
// keep up with more than one line, and never waits on go-plugin.
type procRunner struct {
	p   *proc
	out *lineLogger
	err *lineLogger
	cmd *exec.Cmd

	hsR *io.PipeReader // the handshake line, for go-plugin
	hsW *io.PipeWriter

	mu         sync.Mutex
	started    bool           // Start has started the process and the readers
	outR, errR *os.File       // set by Start, under mu
	readers    sync.WaitGroup // the stdout and stderr readers

	exited  chan struct{} // closed when the process has been reaped
	waitErr error
}

var _ runner.Runner = (*procRunner)(nil)

func newProcRunner(p *proc, z *zap.Logger, cmd *exec.Cmd) *procRunner {
	hsR, hsW := io.Pipe()
	return &procRunner{p: p, cmd: cmd, hsR: hsR, hsW: hsW, exited: make(chan struct{}),
		out: newLineLogger(p, z, "stdout"), err: newLineLogger(p, z, "stderr")}
}

// runnerFunc is the ClientConfig.RunnerFunc that hands r to go-plugin; the
// environment go-plugin prepared (cookie, client certificate, protocol
// versions, socket folder) is added to r's command.
func (r *procRunner) runnerFunc(_ hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
	r.cmd.Env = append(r.cmd.Env, spec.Env...)
	return r, nil
}

// Start starts the process with its own pipes and the readers.
// startProcess forks it from a thread that lives as long as reprise (the
// parent-death signal of parentDeath is tied to that thread).
func (r *procRunner) Start(context.Context) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	r.cmd.Stdin = nil // /dev/null
	r.cmd.Stdout, r.cmd.Stderr = outW, errW
	err = startProcess(r.cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return err
	}
	r.readers.Add(2)
	r.mu.Lock()
	r.outR, r.errR, r.started = outR, errR, true
	r.mu.Unlock()
	r.p.setPid(r.cmd.Process.Pid)
	go func() {
		r.waitErr = r.cmd.Wait()
		if r.waitErr != nil {
			r.p.setExit(r.waitErr.Error())
		} else {
			r.p.setExit("exit status 0")
		}
		close(r.exited)
	}()
	go r.readStdout()
	go r.readStderr()
	return nil
}

// readStdout hands the first line to go-plugin, as soon as it has ended or
// reached maxHandshakeLine bytes, then logs the rest.
func (r *procRunner) readStdout() {
	defer r.readers.Done()
	br := bufio.NewReaderSize(r.outR, 64<<10)
	var line []byte
	var err error
	for len(line) < maxHandshakeLine {
		var frag []byte
		frag, err = br.ReadSlice('\n')
		if n := maxHandshakeLine - len(line); len(frag) > n {
			// Too long for a handshake: hand over what fits, log the rest.
			line = append(line, frag[:n]...)
			_, _ = r.hsW.Write(append(line, '\n'))
			_ = r.hsW.Close()
			r.out.line(append([]byte("(not a handshake) "), frag[n:]...), 0)
			r.out.drain(br)
			return
		}
		line = append(line, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
	}
	if len(line) > 0 && line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	if len(line) > 0 {
		_, _ = r.hsW.Write(line)
	}
	_ = r.hsW.Close()
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return
	}
	r.out.drain(br)
}

func (r *procRunner) readStderr() {
	defer r.readers.Done()
	r.err.drain(bufio.NewReaderSize(r.errR, 64<<10))
}

// Diagnose has nothing to add: the crash tail says it.
func (r *procRunner) Diagnose(context.Context) string { return "" }

// Stdout is the handshake line, then EOF.
func (r *procRunner) Stdout() io.ReadCloser { return r.hsR }

// Stderr is empty for go-plugin: the real one is read by r.
func (r *procRunner) Stderr() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

// Name is the binary's path.
func (r *procRunner) Name() string { return r.cmd.Path }

// ID is the process id.
func (r *procRunner) ID() string {
	if pid := r.p.getPid(); pid > 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

// Wait waits until the process has been reaped (not for its pipes, which a
// child it left may hold open).
func (r *procRunner) Wait(context.Context) error {
	<-r.exited
	return r.waitErr
}

// Kill ends the whole process tree, then lets go-plugin's readers go.
func (r *procRunner) Kill(context.Context) error {
	r.stop()
	return nil
}

// stop kills the process tree, unblocks go-plugin's handshake reader, and
// closes the pipes once the process is gone and the readers had a moment to
// read what was left (a process that escaped the tree may hold them open).
func (r *procRunner) stop() {
	if pid := r.p.getPid(); pid > 0 {
		killTree(pid)
	}
	_ = r.hsR.CloseWithError(io.EOF)
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return
	}
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
	}
	done := make(chan struct{})
	go func() { r.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	_ = r.outR.Close()
	_ = r.errR.Close()
	<-done
	r.out.finish()
	r.err.finish()
}

// settle waits a little for the readers to reach the end of the pipes, so
// that a start error can quote what the process wrote.
func (r *procRunner) settle(d time.Duration) {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return
	}
	done := make(chan struct{})
	go func() { r.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// PluginToHost keeps addresses as they are: the plugin runs on this host.
func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin keeps addresses as they are.
func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// readCapped reads one line (without its newline) keeping at most max
// bytes; cut is how many more bytes the line had, read and dropped. err is
// io.EOF (or the read error) at the end of the stream; a last line without
// a newline comes with it.
func readCapped(br *bufio.Reader, max int) (line []byte, cut int64, err error) {
	for {
		frag, ferr := br.ReadSlice('\n')
		n := len(frag)
		if ferr == nil {
			n-- // the newline
		}
		if room := max - len(line); room > 0 {
			line = append(line, frag[:min(n, room)]...)
			n -= min(n, room)
		}
		cut += int64(n)
		switch {
		case ferr == nil:
			return line, cut, nil
		case errors.Is(ferr, bufio.ErrBufferFull):
			continue
		default:
			return line, cut, ferr
		}
	}
}
