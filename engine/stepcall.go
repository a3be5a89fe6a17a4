package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// request builds the request of node i, with the outputs of its
// dependencies (and of any node its config refers to) as inputs. Config
// placeholders are resolved later, by the step's goroutine, just before the
// call: secrets from the environment never sit in the scheduler's memory.
func (r *runner) request(i, attempt int, mode step.Mode) step.Request {
	n := r.g.Nodes[i]
	inputs := make(map[string]map[string]string, len(r.a.Deps[i]))
	for _, d := range r.a.Deps[i] {
		if out := r.recs[d].Outputs; out != nil {
			inputs[r.g.Nodes[d].ID] = out
		}
	}
	for _, ref := range graphs.Refs(n.With) {
		if ref.Node == "" {
			continue
		}
		if _, ok := inputs[ref.Node]; ok {
			continue
		}
		if j, ok := r.g.Index(ref.Node); ok && r.recs[j].Outputs != nil {
			inputs[ref.Node] = r.recs[j].Outputs
		}
	}
	return step.Request{
		RunID:   r.run.ID,
		NodeID:  n.ID,
		Kind:    n.Kind,
		Plugin:  n.Plugin,
		Attempt: attempt,
		Inputs:  inputs,
		Mode:    mode,
		WorkDir: r.g.Dir,
		Drill:   r.run.Options.Drill,
	}
}

// resolveConfig expands the placeholders of a node's `with`: node outputs
// from inputs, `${env:NAME}` from the environment (plain configuration),
// `${secret:NAME}` from the environment and `${secret:file:PATH}` from a
// file (PATH relative to dir, the graph file's folder); each secret is
// given to the redactor before it can appear anywhere. With
// keepMissingOutputs, an output not yet known stays as its placeholder text
// (dry runs).
func (e *Engine) resolveConfig(n *graphs.Node, dir string, inputs map[string]map[string]string, keepMissingOutputs bool) (map[string]any, error) {
	if len(n.With) == 0 {
		return map[string]any{}, nil
	}
	return graphs.Expand(n.With, func(ref graphs.Ref) (string, error) {
		switch {
		case ref.Env != "":
			v, ok := e.opts.LookupEnv(ref.Env)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set (needed by ${env:%s})", ref.Env, ref.Env)
			}
			return v, nil
		case ref.Secret != "":
			v, ok := e.opts.LookupEnv(ref.Secret)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set (needed by ${secret:%s})", ref.Secret, ref.Secret)
			}
			e.red.Add(v)
			return v, nil
		case ref.SecretFile != "":
			return e.secretFile(dir, ref.SecretFile)
		}
		if out, ok := inputs[ref.Node]; ok {
			if v, ok := out[ref.Key]; ok {
				return v, nil
			}
		}
		if keepMissingOutputs {
			return fmt.Sprintf("${nodes.%s.outputs.%s}", ref.Node, ref.Key), nil
		}
		return "", fmt.Errorf("node %q has no output %q (needed by ${nodes.%s.outputs.%s})", ref.Node, ref.Key, ref.Node, ref.Key)
	})
}

// ResolveConfig expands the placeholders of node n's `with` as a step call
// does, with the engine's environment and redactor (agents resolve the
// nodes they run with their own). dir is the graph file's folder; inputs
// the outputs of the node's dependencies. forCheck keeps an output not yet
// known as its placeholder text, as a Check or dry run does.
func (e *Engine) ResolveConfig(n *graphs.Node, dir string, inputs map[string]map[string]string, forCheck bool) (map[string]any, error) {
	return e.resolveConfig(n, dir, inputs, forCheck)
}

// maxSecretFile bounds what ${secret:file:PATH} reads: a key, a token, a
// certificate chain, never a disk image.
const maxSecretFile = 1 << 20

// secretFile reads the secret in file path (relative to dir), without its
// final newline, and gives it to the redactor.
func (e *Engine) secretFile(dir, path string) (string, error) {
	full := path
	if !filepath.IsAbs(full) && dir != "" {
		full = filepath.Join(dir, full)
	}
	f, err := os.Open(full)
	if err != nil {
		return "", fmt.Errorf("read secret file %s (needed by ${secret:file:%s}): %w", full, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", full, err)
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("secret file %s (needed by ${secret:file:%s}) is over %d bytes", full, path, maxSecretFile)
	}
	v := strings.TrimRight(string(data), "\r\n")
	e.red.Add(v)
	return v, nil
}

// secretOutputs names the outputs holding a secret (sorted), as
// `output "token"`; "" when none does. A secret must not travel through the
// state file: dependents get it with their own ${secret:…}.
func (e *Engine) secretOutputs(outputs map[string]string) string {
	var keys []string
	for k, v := range outputs {
		if e.red.Contains(v) {
			keys = append(keys, strconv.Quote(k))
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	return "output " + strings.Join(keys, ", ")
}

// execute runs one attempt of a step and reports its result to the loop.
func (r *runner) execute(l launch) {
	res := result{idx: l.idx, attempt: l.attempt, started: r.e.opts.Now()}
	ok := false
	if r.converging() {
		res.status, res.message, res.outputs, ok = r.checkFirst(l)
		res.restored = ok && res.status == step.Succeeded
	}
	if !ok {
		res.status, res.message, res.outputs = r.call(l, &res.permanent)
	}
	if res.status != step.Succeeded && res.status != step.Waiting && r.ctx.Err() != nil {
		res.canceled = true
		if res.message == "" {
			res.message = "cancelled by interrupt"
		} else {
			res.message = "cancelled by interrupt: " + res.message
		}
	}
	if bad := r.e.secretOutputs(res.outputs); bad != "" {
		res.outputs = nil
		if res.status == step.Succeeded || res.status == step.Waiting {
			res.status, res.restored = step.Failed, false
			res.message = fmt.Sprintf("node %q: %s holds a secret (a ${secret:…} value): a secret must not travel through the state file; "+
				"a dependent that needs it takes it with its own ${secret:…} placeholder", l.node.ID, bad)
		}
	}
	res.message = r.e.red.String(res.message)
	res.outputs = r.e.red.Map(res.outputs)
	res.ended = r.e.opts.Now()
	r.results <- res
}

// call runs one attempt; *permanent is set when it failed in a way a retry
// cannot mend (see isPermanent).
func (r *runner) call(l launch, permanent *bool) (step.Status, string, map[string]string) {
	if l.node.RestorePoints == nil {
		return r.callStep(l, permanent, nil, nil)
	}
	// The point is chosen first; scans take their own time, outside the
	// step's timeout.
	ch := r.choosePoint(l)
	if ch.status != "" {
		return ch.status, ch.msg, ch.outputs
	}
	if ch.release != nil {
		defer ch.release() // a staged point stays readable for Restore and Verify
	}
	outs := ch.outputs
	status, msg, got := r.callStep(l, permanent, ch.pt, maps.Clone(outs))
	if got == nil {
		got = map[string]string{}
	}
	maps.Copy(got, outs) // the engine's keys win over the plugin's
	return status, msg, got
}

// callStep runs Restore, then Verify, of node l with restore point pt (nil
// for none), starting from outputs.
func (r *runner) callStep(l launch, permanent *bool, pt *step.RestorePoint, outputs map[string]string) (step.Status, string, map[string]string) {
	cfg, err := r.e.resolveConfig(l.node, r.g.Dir, l.req.Inputs, false)
	if err != nil {
		return step.Failed, fmt.Sprintf("resolve config: %v", err), outputs
	}
	req := l.req
	req.Config = cfg
	req.RestorePoint = pt
	if rd, ok := r.e.hostOf(r.g).(readier); ok {
		// The plugin's start-up has its own timeout: the node's starts after.
		if err := rd.Ready(r.ctx, l.node.Plugin); err != nil {
			*permanent = isPermanent(err)
			return step.Failed, err.Error(), nil
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, l.timeout)
	defer cancel()
	var nlogged *zap.Logger // made on the step's first log line: most steps log none
	nlog := func() *zap.Logger {
		if nlogged == nil {
			nlogged = r.log.With(zap.String("node", l.node.ID), zap.Int("attempt", l.attempt))
		}
		return nlogged
	}
	var last lastLines // what the step said last, kept for a timeout's message
	onEvent := func(ev step.Event) {
		switch ev.Kind {
		case step.EventOutput:
			if outputs == nil {
				outputs = map[string]string{}
			}
			outputs[ev.Key] = ev.Value
		case step.EventLog:
			msg := r.e.red.String(ev.Message)
			last.add(msg)
			nlog().Check(stepLevel(ev.Level), msg).Write(zap.String("source", "plugin"))
			out := r.event(EventNodeLog, l.idx, msg)
			out.Attempt = l.attempt
			r.e.emit(out)
		case step.EventProgress:
			out := r.event(EventNodeProgress, l.idx, r.e.red.String(ev.Message))
			out.Percent = ev.Percent
			out.Attempt = l.attempt
			r.e.emit(out)
		}
	}
	sr, err := r.e.hostOf(r.g).Restore(ctx, req, onEvent)
	if err != nil {
		*permanent = isPermanent(err)
		return step.Failed, last.after(ctx, stepError(ctx, l, err)), outputs
	}
	for k, v := range sr.Outputs {
		if outputs == nil {
			outputs = map[string]string{}
		}
		outputs[k] = v
	}
	if sr.Status != step.Succeeded {
		if sr.Status == "" {
			sr.Status = step.Failed
		}
		return sr.Status, sr.Message, outputs
	}
	if !hasVerify(l.node) {
		return step.Succeeded, sr.Message, outputs
	}
	vr, err := r.e.hostOf(r.g).Verify(ctx, req)
	if err != nil {
		*permanent = isPermanent(err)
		return step.Failed, "verify: " + stepError(ctx, l, err), outputs
	}
	// Verify may set outputs too (a count it checked, the URL it probed):
	// they are merged over Restore's, so that dependents receive them.
	for k, v := range vr.Outputs {
		if outputs == nil {
			outputs = map[string]string{}
		}
		outputs[k] = v
	}
	if vr.Status == step.Failed {
		return step.Failed, "verify: " + vr.Message, outputs
	}
	return step.Succeeded, sr.Message, outputs
}

func stepError(ctx context.Context, l launch, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s: %v", l.timeout, err)
	}
	return err.Error()
}

func stepLevel(level string) zapLevel {
	switch strings.ToLower(level) {
	case "debug":
		return zapDebug
	case "warn", "warning":
		return zapWarn
	case "error":
		return zapError
	default:
		return zapInfo
	}
}

// hasVerify reports whether a node's plugin may have a health check worth a
// call after its restore. Two built-ins are known not to: noop (its Verify
// always succeeds) and exec without a `verify` command (same). Skipping the
// call saves a plugin round trip per node, which matters for graphs of
// thousands of milestones and small commands. Every other plugin is asked.
func hasVerify(n *graphs.Node) bool {
	switch n.Plugin {
	case "noop":
		return false
	case "exec":
		_, ok := n.With["verify"]
		return ok
	}
	return true
}

// lastLines keeps the last lines a step logged (its output, its probes):
// a step that times out is cut off before it can say why, and the engine's
// error would only say "timed out". Safe for concurrent use (events may
// come from the host's goroutines).
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

const (
	keepLines   = 5
	maxLineKept = 300
)

func (k *lastLines) add(msg string) {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return
	}
	if len(msg) > maxLineKept {
		msg = msg[:maxLineKept] + "…"
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.lines) == keepLines {
		k.lines = append(k.lines[:0], k.lines[1:]...)
	}
	k.lines = append(k.lines, msg)
}

// after appends the last lines to msg when the step timed out.
func (k *lastLines) after(ctx context.Context, msg string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.lines) == 0 || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return msg
	}
	return msg + "; last output: " + strings.Join(k.lines, " | ")
}
