package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// server adapts a Plugin to the generated gRPC service.
type server struct {
	pluginv1.UnimplementedPluginServer
	impl Plugin

	// gone is cancelled when the host process has died: every call's
	// context ends with it, so that the plugin's work (and the commands it
	// runs) stops before the process exits.
	gone     context.Context
	hostDied context.CancelFunc
	calls    sync.WaitGroup
}

func newServer(impl Plugin) *server {
	gone, cancel := context.WithCancel(context.Background())
	return &server{impl: impl, gone: gone, hostDied: cancel}
}

// begin derives a call's context, also cancelled when the host dies, and
// counts the call in flight; end must be deferred.
func (s *server) begin(ctx context.Context) (context.Context, func()) {
	s.calls.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.gone, cancel)
	return ctx, func() {
		stop()
		cancel()
		s.calls.Done()
	}
}

func toRequest(pb *pluginv1.StepRequest) (*Request, error) {
	req := &Request{
		RunID: pb.GetRunId(), NodeID: pb.GetNodeId(), Kind: pb.GetKind(), Plugin: pb.GetPlugin(),
		Attempt: int(pb.GetAttempt()), ConfigJSON: pb.GetConfigJson(),
		DryRun: pb.GetMode() == pluginv1.Mode_MODE_DRY_RUN, WorkDir: pb.GetWorkDir(), Drill: pb.GetDrill(),
		Config: map[string]any{}, Inputs: map[string]map[string]string{},
	}
	if rp := pb.GetRestorePoint(); rp != nil {
		t, err := time.Parse(time.RFC3339, rp.GetTime())
		if err != nil && rp.GetTime() != "" {
			return nil, status.Errorf(codes.InvalidArgument, "node %q: restore_point.time %q is not RFC 3339", req.NodeID, rp.GetTime())
		}
		req.RestorePoint = &RestorePoint{ID: rp.GetId(), Time: t, Path: rp.GetPath()}
	}
	if len(req.ConfigJSON) == 0 {
		req.ConfigJSON = []byte("{}")
	}
	if emptyObject(req.ConfigJSON) {
		// nothing to decode: Config stays empty
	} else if err := json.Unmarshal(req.ConfigJSON, &req.Config); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "node %q: config_json is not a JSON object: %v", req.NodeID, err)
	}
	if req.Config == nil {
		req.Config = map[string]any{}
	}
	for id, o := range pb.GetInputs() {
		req.Inputs[id] = o.GetValues()
	}
	return req, nil
}

func (s *server) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "describe: %v", err)
	}
	resp := &pluginv1.DescribeResponse{Name: info.Name, Version: info.Version, Kinds: info.Kinds, Description: info.Description}
	_, resp.ListsRestorePoints = s.impl.(PointLister)
	for _, f := range info.Fields {
		resp.Fields = append(resp.Fields, &pluginv1.ConfigField{Name: f.Name, Type: f.Type, Required: f.Required, Description: f.Description})
	}
	wire.FixUTF8(resp)
	return resp, nil
}

func (s *server) Validate(ctx context.Context, pb *pluginv1.StepRequest) (resp *pluginv1.ValidateResponse, err error) {
	ctx, end := s.begin(ctx)
	defer end()
	defer recoverTo(&err)
	req, err := toRequest(pb)
	if err != nil {
		return &pluginv1.ValidateResponse{Problems: []string{"with: not a JSON object"}}, nil
	}
	if v, ok := s.impl.(Validator); ok {
		problems, err := v.Validate(ctx, req)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "validate node %q: %v", req.NodeID, err)
		}
		resp := &pluginv1.ValidateResponse{Problems: problems}
		wire.FixUTF8(resp)
		return resp, nil
	}
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "describe: %v", err)
	}
	return &pluginv1.ValidateResponse{Problems: validateFields(info.Fields, req.Config)}, nil
}

func (s *server) Check(ctx context.Context, pb *pluginv1.StepRequest) (*pluginv1.CheckResponse, error) {
	return serveStep(s, ctx, pb, func(ctx context.Context, req *Request) (*pluginv1.CheckResponse, error) {
		c, ok := s.impl.(Checker)
		if !ok {
			c = Unsupported{}
		}
		res, err := c.Check(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			return nil, status.Errorf(codes.Unknown, "check node %q: %v", req.NodeID, err)
		}
		resp := &pluginv1.CheckResponse{Restored: res.Restored, Message: res.Message}
		if res.Restored {
			resp.Outputs = res.Outputs
		}
		return resp, nil
	})
}

func (s *server) Verify(ctx context.Context, pb *pluginv1.StepRequest) (*pluginv1.StepResult, error) {
	return serveStep(s, ctx, pb, func(ctx context.Context, req *Request) (*pluginv1.StepResult, error) {
		v, ok := s.impl.(Verifier)
		if !ok {
			v = Unsupported{}
		}
		res, err := v.Verify(ctx, req)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, status.FromContextError(ctx.Err()).Err()
		case err != nil:
			return &pluginv1.StepResult{Status: pluginv1.Status_STATUS_FAILED, Message: err.Error(), Outputs: res.Outputs}, nil
		case res.Failed:
			return &pluginv1.StepResult{Status: pluginv1.Status_STATUS_FAILED, Message: res.Message, Outputs: res.Outputs}, nil
		}
		return &pluginv1.StepResult{Status: pluginv1.Status_STATUS_SUCCEEDED, Message: res.Message, Outputs: res.Outputs}, nil
	})
}

// serveStep serves one unary step call with fn: counted in flight and
// cancelled if the host dies (begin), a panic turned into an Internal error,
// the request decoded first.
func serveStep[R any](s *server, ctx context.Context, pb *pluginv1.StepRequest, fn func(context.Context, *Request) (*R, error)) (resp *R, err error) {
	ctx, end := s.begin(ctx)
	defer end()
	defer recoverTo(&err)
	req, err := toRequest(pb)
	if err != nil {
		return nil, err
	}
	resp, err = fn(ctx, req)
	if m, ok := any(resp).(proto.Message); ok && resp != nil {
		wire.FixUTF8(m)
	}
	return resp, err
}

func (s *server) Restore(pb *pluginv1.StepRequest, gs pluginv1.Plugin_RestoreServer) error {
	return s.restoreCall(gs.Context(), pb, func(ev *pluginv1.RestoreEvent) error {
		wire.FixUTF8(ev)
		return gs.Send(ev)
	})
}

// restoreCall serves one Restore, over its own stream or in a session:
// events, then the result, through send. An error is a failed call.
func (s *server) restoreCall(ctx context.Context, pb *pluginv1.StepRequest, send func(*pluginv1.RestoreEvent) error) error {
	req, err := toRequest(pb)
	if err != nil {
		return err
	}
	ctx, end := s.begin(ctx)
	defer end()
	st := newStream(func(ev event) error { return send(toEvent(ev)) })
	runErr := s.restore(ctx, req, st)
	message, outputs := st.finish()
	if st.err != nil {
		return st.err // the host has gone away; nobody reads the result
	}
	if st.overflow != "" && runErr == nil {
		runErr, outputs = errors.New(st.overflow), nil
	}
	if runErr != nil && ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	res := &pluginv1.StepResult{Status: pluginv1.Status_STATUS_SUCCEEDED, Message: message, Outputs: outputs}
	if runErr != nil {
		res.Status, res.Message = pluginv1.Status_STATUS_FAILED, runErr.Error()
		if msg, ok := IsWaiting(runErr); ok {
			res.Status, res.Message = pluginv1.Status_STATUS_WAITING, msg
		}
	}
	return send(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Result{Result: res}})
}

// restore runs the plugin's Restore, turning a panic into a failed step.
func (s *server) restore(ctx context.Context, req *Request, st *Stream) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "panic in Restore of node %q: %v\n%s", req.NodeID, r, debug.Stack())
			err = fmt.Errorf("plugin panic: %v", r)
		}
	}()
	return s.impl.Restore(ctx, req, st)
}

// recoverTo turns a panic in a unary handler into an Internal error, so
// that one bad node does not take down every other node's calls.
func recoverTo(err *error) {
	if r := recover(); r != nil {
		fmt.Fprintf(os.Stderr, "plugin panic: %v\n%s", r, debug.Stack())
		*err = status.Errorf(codes.Internal, "plugin panic: %v", r)
	}
}

func toEvent(ev event) *pluginv1.RestoreEvent {
	ev.message = capText(ev.message, maxEventText)
	switch ev.kind {
	case "progress":
		return &pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Progress{Progress: &pluginv1.Progress{Percent: ev.percent, Message: ev.message}}}
	case "output":
		return &pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Output{Output: &pluginv1.Output{Key: ev.key, Value: ev.value}}}
	default:
		return &pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Log{Log: &pluginv1.Log{Level: string(ev.level), Message: ev.message}}}
	}
}
