package graphs

// vkind is the type of a decoded value.
type vkind uint8

const (
	vNull vkind = iota
	vBool
	vInt
	vFloat
	vStr
	vSeq
	vMap
)

func (k vkind) String() string {
	switch k {
	case vNull:
		return "null"
	case vBool:
		return "boolean"
	case vInt:
		return "integer"
	case vFloat:
		return "number"
	case vStr:
		return "string"
	case vSeq:
		return "list"
	case vMap:
		return "mapping"
	}
	return "value"
}

// value is a decoded YAML or JSON value with the position where it starts:
// both decoders produce it, so that one schema walker serves both formats
// with the same positions and the same strictness.
type value struct {
	kind vkind
	pos  Position
	// s is a scalar's text: the string, the number as written, "true"/"false".
	s string
	// items holds a list's elements, or a mapping's keys and values
	// alternately (k0, v0, k1, v1 …) in file order.
	items []value
}

// describe returns the value for a message: its type and, for a scalar,
// the value itself.
func (v *value) describe() string {
	switch v.kind {
	case vSeq, vMap, vNull:
		return v.kind.String()
	case vStr:
		return "string " + quoteShort(v.s)
	}
	return v.kind.String() + " " + v.s
}

// quoteShort quotes s for a message, cutting it when it is long.
func quoteShort(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return `"` + escapeForMsg(s[:cut]) + `…"`
	}
	return `"` + escapeForMsg(s) + `"`
}

// escapeForMsg escapes quotes, backslashes and control characters so that
// a message stays on one line.
func escapeForMsg(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c == 0x7f:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
