package main

import (
	"strconv"

	"go.uber.org/zap/zapcore"
)

// encoderKeys are the keys the JSON encoder of openLog writes itself.
var encoderKeys = []string{"level", "time", "msg", "logger", "caller", "function", "stacktrace"}

// uniqueKeysCore makes every key of a JSON log line unique: a field whose
// key the line already has (the encoder's own keys, the logger's context
// such as pid and run, or an earlier field, as when a plugin's own log
// line carries a pid or a node) is written as KEY#2, KEY#3 …, so that no
// JSON reader silently keeps one value and drops the other.
type uniqueKeysCore struct {
	zapcore.Core
	keys map[string]bool // keys the line already has before the call's fields
}

func newUniqueKeysCore(c zapcore.Core) zapcore.Core {
	keys := make(map[string]bool, len(encoderKeys))
	for _, k := range encoderKeys {
		keys[k] = true
	}
	return &uniqueKeysCore{Core: c, keys: keys}
}

func (c *uniqueKeysCore) With(fields []zapcore.Field) zapcore.Core {
	keys := make(map[string]bool, len(c.keys)+len(fields))
	for k := range c.keys {
		keys[k] = true
	}
	fields = uniqueFields(keys, fields)
	return &uniqueKeysCore{Core: c.Core.With(fields), keys: keys}
}

func (c *uniqueKeysCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *uniqueKeysCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if !repeatsKey(c.keys, fields) {
		return c.Core.Write(e, fields) // the usual line: nothing to rename, nothing copied
	}
	keys := make(map[string]bool, len(c.keys)+len(fields))
	for k := range c.keys {
		keys[k] = true
	}
	return c.Core.Write(e, uniqueFields(keys, fields))
}

// repeatsKey reports whether a field of fields has a key in keys or the
// key of an earlier field.
func repeatsKey(keys map[string]bool, fields []zapcore.Field) bool {
	for i, f := range fields {
		if f.Type == zapcore.SkipType {
			continue
		}
		if keys[f.Key] {
			return true
		}
		for _, g := range fields[:i] {
			if g.Type != zapcore.SkipType && g.Key == f.Key {
				return true
			}
		}
	}
	return false
}

// uniqueFields renames the fields whose key is in keys (or repeats an
// earlier one) and adds every key it writes to keys. fields is not changed.
func uniqueFields(keys map[string]bool, fields []zapcore.Field) []zapcore.Field {
	out := fields
	for i, f := range fields {
		if f.Type == zapcore.SkipType {
			continue
		}
		k := f.Key
		for n := 2; keys[k]; n++ {
			k = f.Key + "#" + strconv.Itoa(n)
		}
		keys[k] = true
		if k != f.Key {
			if &out[0] == &fields[0] {
				out = append([]zapcore.Field(nil), fields...)
			}
			out[i].Key = k
		}
	}
	return out
}
