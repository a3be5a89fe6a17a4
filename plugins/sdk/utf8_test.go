package sdk

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// TestValidReplyCoversEveryString: the string fields validReply checks are
// every string field of a Restore event's messages (a field added to the
// contract must be added there too, or invalid UTF-8 in it would end a
// session).
func TestValidReplyCoversEveryString(t *testing.T) {
	checked := map[string][]string{
		"Log": {"level", "message"}, "Progress": {"message"}, "Output": {"key", "value"},
		"StepResult": {"message", "outputs"},
	}
	for _, m := range []protoreflect.ProtoMessage{&pluginv1.Log{}, &pluginv1.Progress{}, &pluginv1.Output{}, &pluginv1.StepResult{}} {
		d := m.ProtoReflect().Descriptor()
		var strs []string
		for i := 0; i < d.Fields().Len(); i++ {
			fd := d.Fields().Get(i)
			isString := fd.Kind() == protoreflect.StringKind ||
				(fd.IsMap() && (fd.MapKey().Kind() == protoreflect.StringKind || fd.MapValue().Kind() == protoreflect.StringKind))
			if fd.Kind() == protoreflect.MessageKind && !fd.IsMap() {
				t.Errorf("%s.%s is a message: validReply does not look into it", d.Name(), fd.Name())
			}
			if isString {
				strs = append(strs, string(fd.Name()))
			}
		}
		if want := checked[string(d.Name())]; !slices.Equal(strs, want) {
			t.Errorf("%s has string fields %v, validReply checks %v", d.Name(), strs, want)
		}
	}
	ev := (&pluginv1.RestoreEvent{}).ProtoReflect().Descriptor()
	if n := ev.Oneofs().ByName("event").Fields().Len(); n != 4 {
		t.Errorf("RestoreEvent has %d kinds of event, validReply knows 4", n)
	}
}

// TestValidReply: valid frames are told valid, a bad string anywhere is
// caught (and FixUTF8 then mends it), other frames are left to FixUTF8.
func TestValidReply(t *testing.T) {
	bad := "caf\xe9"
	ev := func(e *pluginv1.RestoreEvent) *pluginv1.ReplyFrame {
		return &pluginv1.ReplyFrame{Reply: &pluginv1.ReplyFrame_Event{Event: e}}
	}
	log := func(level, msg string) *pluginv1.ReplyFrame {
		return ev(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Log{Log: &pluginv1.Log{Level: level, Message: msg}}})
	}
	result := func(msg string, out map[string]string) *pluginv1.ReplyFrame {
		return ev(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Result{Result: &pluginv1.StepResult{Message: msg, Outputs: out}}})
	}
	output := func(k, v string) *pluginv1.ReplyFrame {
		return ev(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Output{Output: &pluginv1.Output{Key: k, Value: v}}})
	}
	progress := func(msg string) *pluginv1.ReplyFrame {
		return ev(&pluginv1.RestoreEvent{Event: &pluginv1.RestoreEvent_Progress{Progress: &pluginv1.Progress{Message: msg}}})
	}
	tests := []struct {
		name  string
		f     *pluginv1.ReplyFrame
		valid bool
	}{
		{"log", log("info", "café"), true},
		{"log level", log(bad, "x"), false},
		{"log message", log("info", bad), false},
		{"progress", progress("half"), true},
		{"progress message", progress(bad), false},
		{"output", output("k", "v"), true},
		{"output key", output(bad, "v"), false},
		{"output value", output("k", bad), false},
		{"result", result("done", map[string]string{"k": "v"}), true},
		{"result message", result(bad, nil), false},
		{"result output key", result("", map[string]string{bad: "v"}), false},
		{"result output value", result("", map[string]string{"k": bad}), false},
		{"an error frame", errorFrame(errBad(bad)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validReply(tt.f); got != tt.valid {
				t.Fatalf("validReply = %v, want %v", got, tt.valid)
			}
			if !tt.valid {
				wire.FixUTF8(tt.f)
				if tt.f.GetEvent() != nil && !validReply(tt.f) {
					t.Errorf("still invalid after FixUTF8: %v", tt.f)
				}
			}
		})
	}
}

type errBad string

func (e errBad) Error() string { return string(e) }
