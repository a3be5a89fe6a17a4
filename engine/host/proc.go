package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// proc is one plugin process. ready is closed once the start attempt is
// over; then err, or client, rpc, sess and pid, are set and never change.
// sess is nil for a plugin without sessions: each call is then its own RPC.
type proc struct {
	name  string
	path  string
	ready chan struct{}
	err   error

	client *plugin.Client
	rpc    pluginv1.PluginClient
	sess   *session
	tail   *tailBuffer
	abort  chan struct{} // closed by Close: a start in progress ends at once

	mu       sync.Mutex
	pid      int
	doomed   bool // the start was given up
	runner   *procRunner
	exit     string         // how the process ended
	inflight map[string]int // node id → calls in flight
	retired  bool
	killed   chan struct{} // closed when kill has ended the process tree
}

func newProc(name string) *proc {
	return &proc{name: name, ready: make(chan struct{}), tail: newTail(20),
		inflight: map[string]int{}, killed: make(chan struct{}), abort: make(chan struct{})}
}

// setPid records the process id; a process started after its start was
// given up (timeout, Close) is killed at once.
func (p *proc) setPid(pid int) {
	p.mu.Lock()
	p.pid = pid
	doomed := p.doomed
	p.mu.Unlock()
	if doomed {
		killTree(pid)
	}
}

// doom gives up the start: the process tree is killed now, or as soon as
// it exists.
func (p *proc) doom() {
	p.mu.Lock()
	p.doomed = true
	pid := p.pid
	p.mu.Unlock()
	if pid > 0 {
		killTree(pid)
	}
}

func (p *proc) getPid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *proc) setRunner(r *procRunner) {
	p.mu.Lock()
	p.runner = r
	p.mu.Unlock()
}

func (p *proc) getRunner() *procRunner {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runner
}

// enter records a call for node in flight; the returned func ends it.
func (p *proc) enter(node string) func() {
	p.mu.Lock()
	p.inflight[node]++
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.inflight[node]--; p.inflight[node] <= 0 {
			delete(p.inflight, node)
		}
		p.mu.Unlock()
	}
}

// log writes one plugin log line with plugin= and, when exactly one node
// has a call in flight, node=.
func (p *proc) log(z *zap.Logger, lvl zapcore.Level, msg string, fields ...zap.Field) {
	if ce := z.Check(lvl, msg); ce != nil {
		fields = append(fields, zap.String("plugin", p.name))
		p.mu.Lock()
		if len(p.inflight) == 1 {
			for n := range p.inflight {
				fields = append(fields, zap.String("node", n))
			}
		}
		p.mu.Unlock()
		ce.Write(fields...)
	}
}

func (p *proc) setExit(s string) {
	p.mu.Lock()
	p.exit = s
	p.mu.Unlock()
}

// crashText describes how the process ended: its exit status and the tail
// of its stderr.
func (p *proc) crashText() string {
	p.mu.Lock()
	exit := p.exit
	p.mu.Unlock()
	if exit == "" {
		exit = "connection to the plugin lost"
	}
	if t := p.tail.String(); t != "" {
		return exit + "; last output:\n" + t
	}
	return exit
}

// launched is what one start attempt left: the client, or the error.
type launched struct {
	client *plugin.Client
	rpc    pluginv1.PluginClient
	sess   *session
	err    error
}

// start starts the plugin process and completes the go-plugin handshake
// within the plugin's start timeout, a hard deadline: past it (or when the
// host is closed meanwhile) the process tree is killed at once, whatever
// the plugin writes or holds open, and the attempt is cleaned up in the
// background.
func (h *Host) start(p *proc) {
	defer close(p.ready)
	timeout := h.startTimeout(p.name)
	res := make(chan launched, 1)
	go func() { res <- h.launch(p, timeout) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var why error
	select {
	case l := <-res:
		p.client, p.rpc, p.sess, p.err = l.client, l.rpc, l.sess, l.err
		return
	case <-t.C:
		why = ErrStartTimeout
	case <-p.abort:
		why = ErrClosed
	}
	p.doom()
	r := p.getRunner()
	if r != nil {
		r.settle(200 * time.Millisecond)
	}
	detail := fmt.Sprintf("no handshake within %s%s", timeout, tailSuffix(p))
	if why == ErrClosed {
		detail = "closed while the plugin was starting"
	}
	p.err = &PluginError{Plugin: p.name, Path: p.path, Err: why, Detail: detail}
	h.reaper.Add(1)
	go func() {
		defer h.reaper.Done()
		l := <-res
		if l.client != nil {
			l.client.Kill()
		}
		if r := p.getRunner(); r != nil {
			r.stop()
		}
	}()
}

// startTimeout is plugin name's own start timeout: its graph declaration's
// start_timeout, or Options.StartTimeout.
func (h *Host) startTimeout(name string) time.Duration {
	if ref, ok := h.opts.Plugins[name]; ok && ref.StartTimeout > 0 {
		return ref.StartTimeout
	}
	return h.opts.StartTimeout
}

// launch makes one start attempt of p: checks, the pinned copy, the
// process, the handshake, the session.
func (h *Host) launch(p *proc, timeout time.Duration) launched {
	cmd, ref, err := h.command(p.name)
	if cmd != nil {
		p.path = cmd.Path
	}
	if err != nil {
		return launched{err: err}
	}
	if err := checkBinary(p.name, cmd.Path); err != nil {
		return launched{err: err}
	}
	if ref.SHA256 != "" {
		// Run exactly the bytes that were hashed: a private copy.
		exe, err := h.verifyPin(p.name, cmd.Path, ref.SHA256)
		if err != nil {
			return launched{err: err}
		}
		cmd.Env = append(cmd.Env, "REPRISE_PLUGIN_PATH="+cmd.Path)
		cmd.Path = exe
	}
	r := newProcRunner(p, h.log, cmd)
	p.setRunner(r)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          wire.PluginSet(nil),
		RunnerFunc:       r.runnerFunc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     timeout,
		Logger:           hclogFor(p, h.log),
		Stderr:           io.Discard, // the runner reads the real stderr
		SyncStdout:       newLineWriter(p, h.log, "stdout"),
		SyncStderr:       newLineWriter(p, h.log, "stderr"),
		SkipHostEnv:      true, // set below, before cmd.Env, so that cmd.Env wins
		GRPCDialOptions: []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessage), grpc.MaxCallSendMsgSize(wire.MaxMessage))},
	}
	cmd.Env = append(os.Environ(), cmd.Env...)
	isolate(cmd)
	client := plugin.NewClient(cfg)
	fail := func(err error) launched {
		client.Kill()
		r.stop()
		return launched{err: err}
	}
	rpcClient, err := client.Client()
	if err != nil {
		r.stop() // the tail is complete once the readers are done
		return fail(h.startError(p, timeout, err))
	}
	raw, err := rpcClient.Dispense(wire.PluginName)
	if err != nil {
		return fail(&PluginError{Plugin: p.name, Path: p.path, Err: ErrHandshake, Detail: err.Error()})
	}
	rpc, ok := raw.(pluginv1.PluginClient)
	if !ok {
		return fail(&PluginError{Plugin: p.name, Path: p.path, Err: ErrHandshake, Detail: fmt.Sprintf("unexpected client type %T", raw)})
	}
	var sess *session
	if !h.opts.NoSessions {
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		sess, err = openSession(sctx, rpc)
		cancel()
		if err != nil && status.Code(err) != codes.Unimplemented {
			return fail(&PluginError{Plugin: p.name, Path: p.path, Err: ErrHandshake, Detail: "open session: " + err.Error() + tailSuffix(p)})
		}
	}
	return launched{client: client, rpc: rpc, sess: sess}
}

// startError classifies an error of go-plugin's Start.
func (h *Host) startError(p *proc, timeout time.Duration, err error) error {
	if strings.Contains(err.Error(), "timeout while waiting for plugin to start") {
		return &PluginError{Plugin: p.name, Path: p.path, Err: ErrStartTimeout,
			Detail: fmt.Sprintf("no handshake within %s%s", timeout, tailSuffix(p))}
	}
	msg := firstLine(err.Error())
	if len(msg) > 1024 {
		msg = fmt.Sprintf("%s … [cut: %d more bytes]", msg[:1024], len(msg)-1024)
	}
	msg, _ = validText([]byte(msg))
	return &PluginError{Plugin: p.name, Path: p.path, Err: ErrHandshake, Detail: msg + tailSuffix(p)}
}

func tailSuffix(p *proc) string {
	if t := p.tail.String(); t != "" {
		return "; plugin output:\n" + t
	}
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// checkBinary reports a missing or non-executable plugin binary.
func checkBinary(name, path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &PluginError{Plugin: name, Path: path, Err: ErrNotFound}
	case err != nil:
		return &PluginError{Plugin: name, Path: path, Err: ErrNotFound, Detail: err.Error()}
	case fi.IsDir():
		return &PluginError{Plugin: name, Path: path, Err: ErrNotExecutable, Detail: "it is a folder"}
	case fi.Mode().Perm()&0o111 == 0:
		return &PluginError{Plugin: name, Path: path, Err: ErrNotExecutable,
			Detail: fmt.Sprintf("mode %s has no execute bit", fi.Mode().Perm())}
	}
	return nil
}

// fileSHA256 returns the lowercase hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileSHA256 returns the lowercase hex SHA-256 of the file at path, the
// form a graph pins in a plugin's sha256.
func FileSHA256(path string) (string, error) { return fileSHA256(path) }

// kill ends the plugin: a graceful go-plugin shutdown when graceful (bounded
// by a few seconds), then SIGKILL to its whole process tree. It is
// idempotent and waits until go-plugin has reaped the process (bounded).
func (p *proc) kill(graceful bool) {
	p.mu.Lock()
	if p.retired {
		p.mu.Unlock()
		<-p.killed
		return
	}
	p.retired = true
	p.mu.Unlock()
	defer close(p.killed)
	if p.client == nil {
		return
	}
	pid := p.getPid()
	done := make(chan struct{})
	if !graceful {
		killTree(pid)
	}
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	killTree(pid) // children the plugin left behind, or a plugin that would not stop
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if r := p.getRunner(); r != nil {
		r.stop()
	}
}

// command returns the command that serves plugin name and its declaration
// (zero for built-ins).
func (h *Host) command(name string) (*exec.Cmd, refInfo, error) {
	if ref, ok := h.opts.Plugins[name]; ok {
		path := ref.Path
		if path == "" {
			return nil, refInfo{}, &PluginError{Plugin: name, Err: ErrNotFound, Detail: "no path declared"}
		}
		path = resolvePath(h.opts.GraphDir, path)
		return exec.Command(path), refInfo{SHA256: ref.SHA256}, nil
	}
	if !isBuiltin(name) {
		return nil, refInfo{}, &PluginError{Plugin: name, Err: ErrUndeclared,
			Detail: "built in: " + strings.Join(builtinNames(), ", ")}
	}
	if h.opts.BuiltinCommand != nil {
		return h.opts.BuiltinCommand(name), refInfo{}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, refInfo{}, &PluginError{Plugin: name, Err: ErrNotFound, Detail: "locate the reprise executable: " + err.Error()}
	}
	return exec.Command(exe, "plugin-serve", name), refInfo{}, nil
}

type refInfo struct{ SHA256 string }
