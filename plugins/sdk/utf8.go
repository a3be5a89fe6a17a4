package sdk

import (
	"unicode/utf8"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// validReply tells, without reflection, whether every string of a Restore
// event frame (log line, progress, output, result) is valid UTF-8: true
// lets push skip wire.FixUTF8's walk, the cost of most of a milestone's
// frames. Any other frame, or one with an invalid string, answers false
// and is walked. TestValidReplyCoversEveryString keeps the fields checked
// here equal to the messages' string fields.
func validReply(f *pluginv1.ReplyFrame) bool {
	switch e := f.GetEvent().GetEvent().(type) {
	case *pluginv1.RestoreEvent_Log:
		return utf8.ValidString(e.Log.GetLevel()) && utf8.ValidString(e.Log.GetMessage())
	case *pluginv1.RestoreEvent_Progress:
		return utf8.ValidString(e.Progress.GetMessage())
	case *pluginv1.RestoreEvent_Output:
		return utf8.ValidString(e.Output.GetKey()) && utf8.ValidString(e.Output.GetValue())
	case *pluginv1.RestoreEvent_Result:
		if !utf8.ValidString(e.Result.GetMessage()) {
			return false
		}
		for k, v := range e.Result.GetOutputs() {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return false
			}
		}
		return true
	}
	return false
}
