package wire

import (
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// FixUTF8 replaces every invalid UTF-8 sequence in m's string fields (map
// keys and values, lists and nested messages included) with U+FFFD, in
// place, and reports whether it changed anything. Protocol buffers refuse
// to encode a string that is not valid UTF-8: unchecked, one plugin's
// Latin-1 log line would end a session that many steps share.
func FixUTF8(m proto.Message) bool {
	if m == nil {
		return false
	}
	return fixMessage(m.ProtoReflect())
}

func fixMessage(m protoreflect.Message) bool {
	changed := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fixMap(fd, v.Map()) {
				changed = true
			}
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				switch fd.Kind() {
				case protoreflect.StringKind:
					if s := l.Get(i).String(); !utf8.ValidString(s) {
						l.Set(i, protoreflect.ValueOfString(strings.ToValidUTF8(s, "\uFFFD")))
						changed = true
					}
				case protoreflect.MessageKind, protoreflect.GroupKind:
					if fixMessage(l.Get(i).Message()) {
						changed = true
					}
				}
			}
		case fd.Kind() == protoreflect.StringKind:
			if s := v.String(); !utf8.ValidString(s) {
				m.Set(fd, protoreflect.ValueOfString(strings.ToValidUTF8(s, "\uFFFD")))
				changed = true
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if fixMessage(v.Message()) {
				changed = true
			}
		}
		return true
	})
	return changed
}

func fixMap(fd protoreflect.FieldDescriptor, mp protoreflect.Map) bool {
	keyStr := fd.MapKey().Kind() == protoreflect.StringKind
	val := fd.MapValue()
	type fix struct {
		oldKey protoreflect.MapKey
		newKey string
	}
	var rekey []fix
	changed := false
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		switch val.Kind() {
		case protoreflect.StringKind:
			if s := v.String(); !utf8.ValidString(s) {
				mp.Set(k, protoreflect.ValueOfString(strings.ToValidUTF8(s, "\uFFFD")))
				changed = true
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if fixMessage(v.Message()) {
				changed = true
			}
		}
		if keyStr && !utf8.ValidString(k.String()) {
			rekey = append(rekey, fix{k, strings.ToValidUTF8(k.String(), "\uFFFD")})
		}
		return true
	})
	for _, f := range rekey {
		v := mp.Get(f.oldKey)
		mp.Clear(f.oldKey)
		mp.Set(protoreflect.ValueOfString(f.newKey).MapKey(), v)
		changed = true
	}
	return changed
}
