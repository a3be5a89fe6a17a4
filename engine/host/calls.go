package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// Describe asks plugin what it is.
func (h *Host) Describe(ctx context.Context, plugin string) (step.PluginInfo, error) {
	p, err := h.get(ctx, plugin)
	if err != nil {
		return step.PluginInfo{}, fmt.Errorf("describe plugin %q: %w", plugin, err)
	}
	resp, err := p.rpc.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return step.PluginInfo{}, h.callError(ctx, p, "describe plugin", plugin, err)
	}
	info := step.PluginInfo{Name: resp.GetName(), Version: resp.GetVersion(), Description: resp.GetDescription(),
		ListsRestorePoints: resp.GetListsRestorePoints()}
	for _, k := range resp.GetKinds() {
		info.Kinds = append(info.Kinds, graphs.Kind(k))
	}
	for _, f := range resp.GetFields() {
		info.Fields = append(info.Fields, step.ConfigField{Name: f.GetName(), Type: f.GetType(),
			Required: f.GetRequired(), Description: f.GetDescription()})
	}
	return info, nil
}

// Validate asks req's plugin for the problems of req's config.
func (h *Host) Validate(ctx context.Context, req step.Request) ([]string, error) {
	p, pb, done, err := h.prepare(ctx, "validate", req)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := unary(ctx, p, pluginv1.Op_OP_VALIDATE, pb, p.rpc.Validate, (*pluginv1.ReplyFrame).GetValidate)
	if err != nil {
		return nil, h.callError(ctx, p, "validate node", req.NodeID, err)
	}
	return resp.GetProblems(), nil
}

// Check asks req's plugin whether req's node is already restored.
func (h *Host) Check(ctx context.Context, req step.Request) (step.CheckResult, error) {
	p, pb, done, err := h.prepare(ctx, "check", req)
	if err != nil {
		return step.CheckResult{}, err
	}
	defer done()
	resp, err := unary(ctx, p, pluginv1.Op_OP_CHECK, pb, p.rpc.Check, (*pluginv1.ReplyFrame).GetCheck)
	if err != nil {
		return step.CheckResult{}, h.callError(ctx, p, "check node", req.NodeID, err)
	}
	res := step.CheckResult{Restored: resp.GetRestored(), Message: resp.GetMessage()}
	if res.Restored && len(resp.GetOutputs()) > 0 {
		gate := newOutputGate(h.opts.Limits, req.NodeID)
		gate.setAll(resp.GetOutputs())
		if gate.over != "" {
			return step.CheckResult{}, fmt.Errorf("check node %q: %s", req.NodeID, gate.over)
		}
		res.Outputs = gate.outputs
	}
	return res, nil
}

// unary makes a call with one answer: through p's session, whose ending
// frame pick reads (nil: the wrong kind of frame), or with rpc when p has
// no session.
func unary[T any](ctx context.Context, p *proc, op pluginv1.Op, pb *pluginv1.StepRequest,
	rpc func(context.Context, *pluginv1.StepRequest, ...grpc.CallOption) (*T, error),
	pick func(*pluginv1.ReplyFrame) *T) (*T, error) {
	if p.sess == nil {
		return rpc(ctx, pb)
	}
	end, err := p.sess.do(ctx, op, pb, nil)
	if err != nil {
		return nil, err
	}
	if resp := pick(end); resp != nil {
		return resp, nil
	}
	return nil, unexpectedReply(op, end)
}

// Restore runs req's restore step, passing streamed events to onEvent (nil:
// dropped) in order from the calling goroutine.
func (h *Host) Restore(ctx context.Context, req step.Request, onEvent func(step.Event)) (step.Result, error) {
	p, pb, done, err := h.prepare(ctx, "restore", req)
	if err != nil {
		return step.Result{}, err
	}
	defer done()
	if onEvent == nil {
		onEvent = func(step.Event) {}
	}
	rs := &restoreEvents{outputs: newOutputGate(h.opts.Limits, req.NodeID), onEvent: onEvent}
	if p.sess != nil {
		end, err := p.sess.do(ctx, pluginv1.Op_OP_RESTORE, pb, func(ev *pluginv1.RestoreEvent) { rs.event(ev) })
		if err == nil && end.GetEvent().GetResult() == nil {
			err = unexpectedReply(pluginv1.Op_OP_RESTORE, end)
		}
		if err != nil {
			rs.end()
			return step.Result{}, h.callError(ctx, p, "restore node", req.NodeID, err)
		}
		return rs.result(req, rs.event(end.GetEvent()))
	}
	stream, err := p.rpc.Restore(ctx, pb)
	if err != nil {
		return step.Result{}, h.callError(ctx, p, "restore node", req.NodeID, err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			rs.end()
			return step.Result{}, fmt.Errorf("restore node %q: plugin %q ended the stream without a result", req.NodeID, req.Plugin)
		}
		if err != nil {
			rs.end()
			return step.Result{}, h.callError(ctx, p, "restore node", req.NodeID, err)
		}
		if res := rs.event(ev); res != nil {
			return rs.result(req, res)
		}
	}
}

// restoreEvents turns one Restore call's events into the engine's: log
// lines capped and within the step's log budget, outputs kept (not passed
// on while within the graph's limits; a failed step's outputs are never
// stored).
type restoreEvents struct {
	outputs *outputGate
	onEvent func(step.Event)
	budget  logBudget
}

// event passes one Restore event on and returns the result, if it is one.
func (r *restoreEvents) event(ev *pluginv1.RestoreEvent) *pluginv1.StepResult {
	switch e := ev.GetEvent().(type) {
	case *pluginv1.RestoreEvent_Log:
		level := e.Log.GetLevel()
		if level == "" {
			level = "info"
		}
		msg := e.Log.GetMessage()
		if !r.budget.take(len(msg)) {
			return nil
		}
		r.onEvent(step.Event{Kind: step.EventLog, Level: level, Message: capLine(msg)})
	case *pluginv1.RestoreEvent_Progress:
		r.onEvent(step.Event{Kind: step.EventProgress, Percent: e.Progress.GetPercent(), Message: capLine(e.Progress.GetMessage())})
	case *pluginv1.RestoreEvent_Output:
		if r.outputs.set(e.Output.GetKey(), e.Output.GetValue()) {
			r.onEvent(step.Event{Kind: step.EventOutput, Key: e.Output.GetKey(), Value: e.Output.GetValue()})
		}
	case *pluginv1.RestoreEvent_Result:
		r.outputs.setAll(e.Result.GetOutputs())
		return e.Result
	}
	return nil
}

// end says what the log budget dropped, if anything.
func (r *restoreEvents) end() {
	if s := r.budget.summary(); s != "" {
		r.onEvent(step.Event{Kind: step.EventLog, Level: "warn", Message: s})
	}
}

// result is the call's result, failed when the outputs passed a limit.
func (r *restoreEvents) result(req step.Request, res *pluginv1.StepResult) (step.Result, error) {
	r.end()
	out, err := toResult(req, "restore", res, nil)
	if err != nil {
		return out, err
	}
	return r.outputs.apply(out), nil
}

// capLine cuts a log line to MaxLogLine bytes, saying so.
func capLine(s string) string {
	if len(s) <= MaxLogLine {
		return s
	}
	cut := MaxLogLine
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s … [cut: %d more bytes]", s[:cut], len(s)-cut)
}

// Verify runs req's health check.
func (h *Host) Verify(ctx context.Context, req step.Request) (step.Result, error) {
	p, pb, done, err := h.prepare(ctx, "verify", req)
	if err != nil {
		return step.Result{}, err
	}
	defer done()
	resp, err := unary(ctx, p, pluginv1.Op_OP_VERIFY, pb, p.rpc.Verify, (*pluginv1.ReplyFrame).GetResult)
	if err != nil {
		return step.Result{}, h.callError(ctx, p, "verify node", req.NodeID, err)
	}
	res, err := toResult(req, "verify", resp, nil)
	if err != nil {
		return res, err
	}
	gate := newOutputGate(h.opts.Limits, req.NodeID)
	gate.setAll(resp.GetOutputs())
	return gate.apply(res), nil
}

func toResult(req step.Request, op string, r *pluginv1.StepResult, outputs map[string]string) (step.Result, error) {
	res := step.Result{Message: r.GetMessage(), Outputs: outputs}
	if res.Outputs == nil {
		res.Outputs = map[string]string{}
	}
	switch r.GetStatus() {
	case pluginv1.Status_STATUS_SUCCEEDED:
		res.Status = step.Succeeded
	case pluginv1.Status_STATUS_FAILED:
		res.Status = step.Failed
	case pluginv1.Status_STATUS_WAITING:
		res.Status = step.Waiting
	default:
		return step.Result{}, fmt.Errorf("%s node %q: plugin %q answered without a status", op, req.NodeID, req.Plugin)
	}
	return res, nil
}

// prepare gets req's plugin process, builds the request message and records
// the call in flight (done ends it).
func (h *Host) prepare(ctx context.Context, op string, req step.Request) (*proc, *pluginv1.StepRequest, func(), error) {
	pb, err := toPB(req)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s node %q: %w", op, req.NodeID, err)
	}
	p, err := h.get(ctx, req.Plugin)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s node %q: %w", op, req.NodeID, err)
	}
	return p, pb, p.enter(req.NodeID), nil
}

func toPB(req step.Request) (*pluginv1.StepRequest, error) {
	js := []byte("{}") // most milestones have no `with`
	if len(req.Config) > 0 {
		var err error
		if js, err = json.Marshal(req.Config); err != nil {
			// The error may quote a value; the config can hold secrets.
			return nil, errors.New("encode config: a value of `with` cannot be encoded as JSON")
		}
	}
	pb := &pluginv1.StepRequest{
		RunId: req.RunID, NodeId: req.NodeID, Kind: string(req.Kind), Plugin: req.Plugin,
		Attempt: int32(req.Attempt), ConfigJson: js, WorkDir: req.WorkDir, Mode: pluginv1.Mode_MODE_NORMAL,
		Drill: req.Drill,
	}
	if req.Mode == step.ModeDryRun {
		pb.Mode = pluginv1.Mode_MODE_DRY_RUN
	}
	if rp := req.RestorePoint; rp != nil {
		pb.RestorePoint = &pluginv1.RestorePoint{Id: rp.ID, Time: rp.Time.UTC().Format(time.RFC3339), Path: rp.Path}
	}
	if len(req.Inputs) > 0 {
		pb.Inputs = make(map[string]*pluginv1.Outputs, len(req.Inputs))
		for id, o := range req.Inputs {
			pb.Inputs[id] = &pluginv1.Outputs{Values: o}
		}
	}
	return pb, nil
}

// callError turns a failed gRPC call into the host's error: the caller's
// own cancellation or deadline, a crash of the plugin process (which is
// then retired, so that the next call starts a new one), or the plugin's
// error.
func (h *Host) callError(ctx context.Context, p *proc, op, subject string, err error) error {
	st, _ := status.FromError(err)
	if st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded {
		// The plugin gets the deadline too (grpc-timeout) and may end the
		// call a moment before this process's own timer fires.
		waitDeadline(ctx, time.Second)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %q: %w", op, subject, ctxErr)
	}
	// The end of a session is the loss of the connection, whatever its
	// status: the process is retired even if it still runs.
	var lost *sessionError
	crashed := st.Code() == codes.Unavailable || p.client.Exited() || errors.As(err, &lost)
	if !crashed && st.Code() == codes.Canceled {
		// A stream reset without our cancellation: did the process die?
		waitExited(p, 500*time.Millisecond)
		crashed = p.client.Exited()
	}
	if crashed {
		// A session the plugin ended while its process still ran is a
		// plugin bug, not a crash: say so (the process is stopped all the same).
		ended := lost != nil && st.Code() != codes.Unavailable && !p.client.Exited()
		h.retire(p)
		waitExited(p, 2*time.Second)
		if r := p.getRunner(); r != nil {
			r.settle(time.Second) // the last stderr lines, for the crash text
		}
		detail := p.crashText()
		if ended {
			detail = fmt.Sprintf("the plugin ended its session stream (%s: %s) while its process ran; the process was stopped, the next call starts a new one",
				st.Code(), st.Message())
		}
		return fmt.Errorf("%s %q: %w", op, subject,
			&PluginError{Plugin: p.name, Path: p.path, Err: ErrCrashed, Detail: detail})
	}
	return fmt.Errorf("%s %q: plugin %q: %s", op, subject, p.name, st.Message())
}

// waitDeadline waits for ctx to end when its deadline is less than within
// away (plus a small margin for timer skew).
func waitDeadline(ctx context.Context, within time.Duration) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return
	}
	left := time.Until(deadline)
	if left > within {
		return
	}
	t := time.NewTimer(max(left, 0) + 50*time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitExited waits until go-plugin has seen p's process end (its exit
// status and stderr are then complete), at most d.
func waitExited(p *proc, d time.Duration) {
	deadline := time.Now().Add(d)
	for !p.client.Exited() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
