package sdk

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// pair serves impl over a real in-process gRPC connection (go-plugin's test
// pair) and returns the client side.
func pair(t testing.TB, impl Plugin) pluginv1.PluginClient {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, wire.PluginSet(newServer(impl)))
	t.Cleanup(func() { client.Close() }) // its Shutdown call stops the server
	raw, err := client.Dispense(wire.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(pluginv1.PluginClient)
}

// scripted is a plugin whose Restore follows the node's `with.do`.
type scripted struct{}

func (scripted) Describe(context.Context) (Info, error) {
	return Info{Name: "scripted", Version: "1.2.3", Kinds: []string{"data"},
		Fields: []Field{{Name: "do", Type: "string", Required: true}, {Name: "n", Type: "int"}}}, nil
}

func (scripted) Restore(ctx context.Context, req *Request, s *Stream) error {
	switch req.Config["do"] {
	case "ok":
		s.Logf("restoring %s attempt %d dry=%v", req.NodeID, req.Attempt, req.DryRun)
		s.Progress(150, "half")
		s.Output("studies", "12")
		s.Output("from", req.Inputs["storage"]["mount"])
		s.SetMessage("restored 12 studies")
		return nil
	case "fail":
		s.Warnf("disk full")
		return errors.New("copy study 7: no space left on device")
	case "wait":
		return Waiting("waiting for approval: radiology")
	case "panic":
		panic("nil study")
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func restoreAll(t *testing.T, c pluginv1.PluginClient, ctx context.Context, req *pluginv1.StepRequest) ([]*pluginv1.RestoreEvent, error) {
	t.Helper()
	st, err := c.Restore(ctx, req)
	if err != nil {
		return nil, err
	}
	var evs []*pluginv1.RestoreEvent
	for {
		ev, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestRestoreStream(t *testing.T) {
	c := pair(t, scripted{})
	ctx := context.Background()
	tests := []struct {
		do         string
		wantEvents int
		wantStatus pluginv1.Status
		wantMsg    string
	}{
		{"ok", 5, pluginv1.Status_STATUS_SUCCEEDED, "restored 12 studies"},
		{"fail", 2, pluginv1.Status_STATUS_FAILED, "copy study 7: no space left on device"},
		{"wait", 1, pluginv1.Status_STATUS_WAITING, "waiting for approval: radiology"},
		{"panic", 1, pluginv1.Status_STATUS_FAILED, "plugin panic: nil study"},
	}
	for _, tt := range tests {
		t.Run(tt.do, func(t *testing.T) {
			evs, err := restoreAll(t, c, ctx, &pluginv1.StepRequest{NodeId: "pacs", Attempt: 2,
				ConfigJson: []byte(`{"do":"` + tt.do + `"}`), Mode: pluginv1.Mode_MODE_DRY_RUN,
				Inputs: map[string]*pluginv1.Outputs{"storage": {Values: map[string]string{"mount": "/mnt/s"}}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tt.wantEvents {
				t.Fatalf("%d events %v, want %d", len(evs), evs, tt.wantEvents)
			}
			res := evs[len(evs)-1].GetResult()
			if res == nil || res.GetStatus() != tt.wantStatus || res.GetMessage() != tt.wantMsg {
				t.Errorf("last event %v, want result %s %q", evs[len(evs)-1], tt.wantStatus, tt.wantMsg)
			}
			if tt.do == "ok" {
				if got := evs[0].GetLog().GetMessage(); got != "restoring pacs attempt 2 dry=true" {
					t.Errorf("log = %q", got)
				}
				if p := evs[1].GetProgress(); p.GetPercent() != 100 || p.GetMessage() != "half" {
					t.Errorf("progress = %v, want clamped to 100", p)
				}
				want := map[string]string{"studies": "12", "from": "/mnt/s"}
				if !reflect.DeepEqual(res.GetOutputs(), want) {
					t.Errorf("outputs = %v, want %v", res.GetOutputs(), want)
				}
			}
		})
	}
}

func TestRestoreCancel(t *testing.T) {
	c := pair(t, scripted{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := restoreAll(t, c, ctx, &pluginv1.StepRequest{ConfigJson: []byte(`{"do":"hang"}`)})
	if err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestDefaultsAndDescribe(t *testing.T) {
	c := pair(t, scripted{})
	ctx := context.Background()
	d, err := c.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil || d.GetName() != "scripted" || d.GetVersion() != "1.2.3" || len(d.GetFields()) != 2 || !d.GetFields()[0].GetRequired() {
		t.Errorf("Describe = %v, %v", d, err)
	}
	v, err := c.Validate(ctx, &pluginv1.StepRequest{ConfigJson: []byte(`{"n":1,"extra":true}`)})
	want := []string{"with.extra: unknown field (want do, n)", "with.do: required field missing"}
	if err != nil || !reflect.DeepEqual(v.GetProblems(), want) {
		t.Errorf("Validate = %q, %v; want %q", v.GetProblems(), err, want)
	}
	ch, err := c.Check(ctx, &pluginv1.StepRequest{})
	if err != nil || ch.GetRestored() {
		t.Errorf("Check = %v, %v; want not restored", ch, err)
	}
	vr, err := c.Verify(ctx, &pluginv1.StepRequest{})
	if err != nil || vr.GetStatus() != pluginv1.Status_STATUS_SUCCEEDED {
		t.Errorf("Verify = %v, %v; want succeeded", vr, err)
	}
	if _, err := c.Check(ctx, &pluginv1.StepRequest{ConfigJson: []byte(`not json`)}); err == nil {
		t.Error("Check with invalid config_json: want an error")
	}
}

// capable implements every optional interface.
type capable struct{ scripted }

func (capable) Check(_ context.Context, req *Request) (CheckResult, error) {
	return CheckResult{Restored: req.Config["done"] == true, Message: "looked"}, nil
}

func (capable) Verify(_ context.Context, req *Request) (Result, error) {
	if req.Config["healthy"] != true {
		return Result{}, errors.New("index unreadable")
	}
	return Result{Message: "ok", Outputs: map[string]string{"checked": "3"}}, nil
}

func (capable) Validate(context.Context, *Request) ([]string, error) { return []string{"custom"}, nil }

func TestOptionalInterfaces(t *testing.T) {
	c := pair(t, capable{})
	ctx := context.Background()
	if ch, err := c.Check(ctx, &pluginv1.StepRequest{ConfigJson: []byte(`{"done":true}`)}); err != nil || !ch.GetRestored() {
		t.Errorf("Check = %v, %v", ch, err)
	}
	if vr, err := c.Verify(ctx, &pluginv1.StepRequest{}); err != nil || vr.GetStatus() != pluginv1.Status_STATUS_FAILED || vr.GetMessage() != "index unreadable" {
		t.Errorf("Verify = %v, %v; want failed", vr, err)
	}
	if vr, err := c.Verify(ctx, &pluginv1.StepRequest{ConfigJson: []byte(`{"healthy":true}`)}); err != nil || vr.GetOutputs()["checked"] != "3" {
		t.Errorf("Verify = %v, %v", vr, err)
	}
	if v, err := c.Validate(ctx, &pluginv1.StepRequest{}); err != nil || !reflect.DeepEqual(v.GetProblems(), []string{"custom"}) {
		t.Errorf("Validate = %v, %v", v, err)
	}
}
