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
	pid    int
	tail   *tailBuffer

	mu       sync.Mutex
	exit     string         // exit status logged by go-plugin
	inflight map[string]int // node id → calls in flight
	retired  bool
	killed   chan struct{} // closed when kill has ended the process tree
}

func newProc(name string) *proc {
	return &proc{name: name, ready: make(chan struct{}), tail: newTail(20),
		inflight: map[string]int{}, killed: make(chan struct{})}
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

// start starts the plugin process and completes the go-plugin handshake.
func (h *Host) start(p *proc) {
	defer close(p.ready)
	cmd, ref, err := h.command(p.name)
	if cmd != nil {
		p.path = cmd.Path
	}
	if err != nil {
		p.err = err
		return
	}
	if err := checkBinary(p.name, cmd.Path); err != nil {
		p.err = err
		return
	}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          wire.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     h.opts.StartTimeout,
		Logger:           hclogFor(p, h.log),
		Stderr:           p.tail,
		SyncStdout:       &lineWriter{p: p, z: h.log, stream: "stdout"},
		SyncStderr:       &lineWriter{p: p, z: h.log, stream: "stderr"},
		SkipHostEnv:      true, // set below, before cmd.Env, so that cmd.Env wins
		GRPCDialOptions:  []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20)},
	}
	cmd.Env = append(os.Environ(), cmd.Env...)
	isolate(cmd)
	var want []byte
	if ref.SHA256 != "" {
		want, err = hex.DecodeString(ref.SHA256)
		if err != nil || len(want) != sha256.Size {
			p.err = &PluginError{Plugin: p.name, Path: cmd.Path, Err: ErrChecksum,
				Detail: fmt.Sprintf("pinned sha256 %q is not 64 hex digits", ref.SHA256)}
			return
		}
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	rpcClient, err := client.Client()
	if cmd.Process != nil {
		p.pid = cmd.Process.Pid
	}
	if err != nil {
		client.Kill()
		killTree(p.pid)
		p.err = h.startError(p, cmd.Path, ref.SHA256, err)
		return
	}
	raw, err := rpcClient.Dispense(wire.PluginName)
	if err != nil {
		client.Kill()
		killTree(p.pid)
		p.err = &PluginError{Plugin: p.name, Path: cmd.Path, Err: ErrHandshake, Detail: err.Error()}
		return
	}
	rpc, ok := raw.(pluginv1.PluginClient)
	if !ok {
		client.Kill()
		killTree(p.pid)
		p.err = &PluginError{Plugin: p.name, Path: cmd.Path, Err: ErrHandshake, Detail: fmt.Sprintf("unexpected client type %T", raw)}
		return
	}
	var sess *session
	if !h.opts.NoSessions {
		sctx, cancel := context.WithTimeout(context.Background(), h.opts.StartTimeout)
		sess, err = openSession(sctx, rpc)
		cancel()
		if err != nil && status.Code(err) != codes.Unimplemented {
			client.Kill()
			killTree(p.pid)
			p.err = &PluginError{Plugin: p.name, Path: cmd.Path, Err: ErrHandshake, Detail: "open session: " + err.Error() + tailSuffix(p)}
			return
		}
	}
	p.client, p.rpc, p.sess = client, rpc, sess
}

// startError classifies an error of go-plugin's Start.
func (h *Host) startError(p *proc, path, pinned string, err error) error {
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		actual, herr := fileSHA256(path)
		if herr != nil {
			actual = "unreadable: " + herr.Error()
		}
		return &PluginError{Plugin: p.name, Path: path, Err: ErrChecksum,
			Detail: fmt.Sprintf("expected sha256 %s, actual %s (the binary changed since it was pinned; check it, then update the graph's sha256)", strings.ToLower(pinned), actual)}
	case strings.Contains(err.Error(), "timeout while waiting for plugin to start"):
		return &PluginError{Plugin: p.name, Path: path, Err: ErrStartTimeout,
			Detail: fmt.Sprintf("no handshake within %s%s", h.opts.StartTimeout, tailSuffix(p))}
	}
	return &PluginError{Plugin: p.name, Path: path, Err: ErrHandshake, Detail: firstLine(err.Error()) + tailSuffix(p)}
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
	done := make(chan struct{})
	if !graceful {
		killTree(p.pid)
	}
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	killTree(p.pid) // children the plugin left behind, or a plugin that would not stop
	select {
	case <-done:
	case <-time.After(5 * time.Second):
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
