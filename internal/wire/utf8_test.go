package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

func TestFixUTF8(t *testing.T) {
	f := &pluginv1.SessionDown{Frames: []*pluginv1.ReplyFrame{
		{Id: 1, Reply: &pluginv1.ReplyFrame_Event{Event: &pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Log{Log: &pluginv1.Log{Level: "info", Message: "Fran\xe7ois"}}}}},
		{Id: 2, Reply: &pluginv1.ReplyFrame_Result{Result: &pluginv1.StepResult{Message: "ok", Outputs: map[string]string{"k\xff": "v\xe9", "good": "fine"}}}},
	}}
	if _, err := proto.Marshal(f); err == nil {
		t.Fatal("marshal of invalid UTF-8 succeeded: the test proves nothing")
	}
	if !FixUTF8(f) {
		t.Fatal("FixUTF8 changed nothing")
	}
	if _, err := proto.Marshal(f); err != nil {
		t.Fatalf("after FixUTF8: %v", err)
	}
	if got := f.Frames[0].GetEvent().GetLog().GetMessage(); got != "Fran\uFFFDois" {
		t.Errorf("message = %q", got)
	}
	out := f.Frames[1].GetResult().GetOutputs()
	if out["k\uFFFD"] != "v\uFFFD" || out["good"] != "fine" || len(out) != 2 {
		t.Errorf("outputs = %q", out)
	}
	if FixUTF8(f) {
		t.Error("second FixUTF8 changed something")
	}
}
