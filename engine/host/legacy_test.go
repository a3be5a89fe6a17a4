package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// legacyPlugin implements the contract without the optional Session, the
// way a plugin written in another language from plugins/proto/README.md
// alone may: straight on the generated service, without the SDK.
type legacyPlugin struct {
	pluginv1.UnimplementedPluginServer
}

func (legacyPlugin) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return &pluginv1.DescribeResponse{Name: "legacy", Version: "0.1.0"}, nil
}

func (legacyPlugin) Validate(_ context.Context, r *pluginv1.StepRequest) (*pluginv1.ValidateResponse, error) {
	return &pluginv1.ValidateResponse{Problems: []string{"checked " + r.GetNodeId()}}, nil
}

func (legacyPlugin) Check(_ context.Context, r *pluginv1.StepRequest) (*pluginv1.CheckResponse, error) {
	return &pluginv1.CheckResponse{Restored: true, Message: "already there: " + r.GetNodeId()}, nil
}

func (legacyPlugin) Verify(context.Context, *pluginv1.StepRequest) (*pluginv1.StepResult, error) {
	return &pluginv1.StepResult{Status: pluginv1.Status_STATUS_SUCCEEDED, Message: "healthy"}, nil
}

func (legacyPlugin) Restore(r *pluginv1.StepRequest, s pluginv1.Plugin_RestoreServer) error {
	var with struct {
		Do string `json:"do"`
	}
	if err := json.Unmarshal(r.GetConfigJson(), &with); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if with.Do == "hang" {
		<-s.Context().Done()
		return status.FromContextError(s.Context().Err()).Err()
	}
	if err := s.Send(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Log{Log: &pluginv1.Log{Message: "restoring " + r.GetNodeId()}}}); err != nil {
		return err
	}
	if err := s.Send(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Output{Output: &pluginv1.Output{Key: "pid", Value: fmt.Sprint(os.Getpid())}}}); err != nil {
		return err
	}
	return s.Send(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Result{Result: &pluginv1.StepResult{Status: pluginv1.Status_STATUS_SUCCEEDED, Message: "done"}}})
}

// brokenSession accepts a Session, then ends it with an error on the first
// message from the host, its process still running: a plugin bug.
type brokenSession struct {
	legacyPlugin
}

func (brokenSession) Session(s pluginv1.Plugin_SessionServer) error {
	if err := s.Send(&pluginv1.SessionDown{}); err != nil {
		return err
	}
	if _, err := s.Recv(); err != nil {
		return err
	}
	return status.Error(codes.Internal, "session handler bug")
}

func serveLegacy(broken bool) {
	var impl pluginv1.PluginServer = legacyPlugin{}
	if broken {
		impl = brokenSession{}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         wire.PluginSet(impl),
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// TestPluginEndsItsSession: a plugin that ends its Session stream while its
// process runs fails the call with an error that says so; its process is
// stopped and the next call gets a new one.
func TestPluginEndsItsSession(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	_, err := h.Restore(ctx, req("brokensession", "n1", map[string]any{"do": "ok"}), nil)
	if !errors.Is(err, host.ErrCrashed) || !strings.Contains(err.Error(), "ended its session stream") ||
		!strings.Contains(err.Error(), "session handler bug") {
		t.Fatalf("Restore = %v; want ErrCrashed saying the plugin ended its session (session handler bug)", err)
	}
	if uses, err := host.UsesSession(ctx, h, "brokensession"); err != nil || !uses {
		t.Fatalf("next start: UsesSession = %v, %v; want a new process with a session", uses, err)
	}
}

// TestPluginWithoutSession: a plugin that answers UNIMPLEMENTED to Session
// is called with one RPC per call, concurrently, and every operation
// works: the contract's Session is optional.
func TestPluginWithoutSession(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	if uses, err := host.UsesSession(ctx, h, "legacy"); err != nil || uses {
		t.Fatalf("UsesSession(legacy) = %v, %v; want false, nil", uses, err)
	}
	if uses, err := host.UsesSession(ctx, h, "crashy"); err != nil || !uses {
		t.Fatalf("UsesSession(crashy) = %v, %v; want true, nil (an SDK plugin)", uses, err)
	}

	var wg sync.WaitGroup
	results := make([]step.Result, 12)
	errs := make([]error, len(results))
	logs := make([][]string, len(results))
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.Restore(ctx, req("legacy", fmt.Sprintf("n%d", i), map[string]any{"do": "ok"}),
				func(e step.Event) {
					if e.Kind == step.EventLog {
						logs[i] = append(logs[i], e.Message)
					}
				})
		}()
	}
	wg.Wait()
	for i, res := range results {
		if errs[i] != nil || res.Status != step.Succeeded || res.Outputs["pid"] == "" || res.Outputs["pid"] != results[0].Outputs["pid"] {
			t.Fatalf("Restore n%d = %+v, %v; want succeeded with the pid of one process", i, res, errs[i])
		}
		if want := fmt.Sprintf("restoring n%d", i); len(logs[i]) != 1 || logs[i][0] != want {
			t.Errorf("n%d logs = %q, want [%q]", i, logs[i], want)
		}
	}

	r := req("legacy", "dpi", map[string]any{})
	if res, err := h.Verify(ctx, r); err != nil || res.Status != step.Succeeded || res.Message != "healthy" {
		t.Errorf("Verify = %+v, %v", res, err)
	}
	if res, err := h.Check(ctx, r); err != nil || !res.Restored || res.Message != "already there: dpi" {
		t.Errorf("Check = %+v, %v", res, err)
	}
	if problems, err := h.Validate(ctx, r); err != nil || len(problems) != 1 || problems[0] != "checked dpi" {
		t.Errorf("Validate = %q, %v", problems, err)
	}

	// The per-call path honours deadlines too.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := h.Restore(short, req("legacy", "stuck", map[string]any{"do": "hang"}), nil)
	if err == nil || short.Err() == nil {
		t.Fatalf("Restore past its deadline = %v, want the deadline's error", err)
	}
}
