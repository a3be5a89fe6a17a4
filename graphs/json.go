package graphs

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is how deeply lists and mappings may nest in a graph file.
const MaxDepth = 256

// parseJSON decodes JSON into a value tree with the position of every value.
//
// A small scanner of our own rather than encoding/json: encoding/json keeps
// the last of duplicate keys without a word and its errors carry a byte
// offset at best, while the schema wants line:col for every field and
// duplicate keys refused. The grammar is RFC 8259's; escaped strings are
// decoded by encoding/json itself. The fuzz target checks that this scanner
// accepts exactly what json.Valid accepts. data must be valid UTF-8.
//
// With d set, the entries of the top-level "nodes" list are handed to
// d.streamNode as they are read instead of being kept in the tree: a
// 100,000-node file then never holds its whole value tree at once.
func parseJSON(data []byte, alias bool, d *decoder) (value, *Problem) {
	p := &jsonParser{data: data, line: 1, col: 1, alias: alias, dec: d}
	p.ws()
	v, ok := p.value()
	if ok {
		p.ws()
		if p.i < len(p.data) {
			p.fail(p.i, "unexpected %s after the top-level value", p.describeAt(p.i))
			ok = false
		}
	}
	if !ok {
		return value{}, p.err
	}
	return v, nil
}

type jsonParser struct {
	data      []byte
	i         int
	line      int
	lineStart int
	// colOff/col cache the column of the last position asked for on the
	// current line, so that a minified file on one line stays linear.
	colOff int
	col    int
	depth  int
	err    *Problem
	// scratch collects the items of the lists and mappings being read;
	// each is copied out at its exact size when it ends, so that items
	// slices are not regrown and left as garbage.
	scratch []value
	// keys interns mapping keys: a graph file repeats a dozen of them.
	keys map[string]string
	// alias makes strings without escapes point into data (see parse).
	alias bool
	dec   *decoder
}

// text returns data[a:b] as a string, copied unless p.alias.
func (p *jsonParser) text(a, b int) string {
	if p.alias && b > a {
		return unsafe.String(&p.data[a], b-a)
	}
	return string(p.data[a:b])
}

func (p *jsonParser) items(mark int) []value {
	n := len(p.scratch) - mark
	if n == 0 {
		return nil
	}
	out := make([]value, n)
	copy(out, p.scratch[mark:])
	clear(p.scratch[mark:]) // drop references for the GC
	p.scratch = p.scratch[:mark]
	return out
}

func (p *jsonParser) key(b []byte) string {
	// The schema's own names first, without hashing (a switch on
	// string(b) does not allocate).
	switch string(b) {
	case "id":
		return "id"
	case "kind":
		return "kind"
	case "plugin":
		return "plugin"
	case "depends_on":
		return "depends_on"
	case "between":
		return "between"
	case "criticality":
		return "criticality"
	case "estimate":
		return "estimate"
	case "title":
		return "title"
	case "timeout":
		return "timeout"
	case "retries":
		return "retries"
	case "with":
		return "with"
	}
	if s, ok := p.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if p.keys == nil {
		p.keys = map[string]string{}
	}
	if len(p.keys) < 1024 {
		p.keys[s] = s
	}
	return s
}

// pos returns the position of byte offset off; offsets must be asked for in
// increasing order on a line (the scanner only moves forward).
func (p *jsonParser) pos(off int) Position {
	if p.colOff < p.lineStart || off < p.colOff {
		p.colOff, p.col = p.lineStart, 1
	}
	p.col += utf8.RuneCount(p.data[p.colOff:off])
	p.colOff = off
	return Position{Line: p.line, Column: p.col}
}

func (p *jsonParser) fail(off int, format string, args ...any) {
	if p.err != nil {
		return
	}
	pos := p.pos(off)
	p.err = &Problem{Line: pos.Line, Col: pos.Column, Message: "not valid JSON: " + fmt.Sprintf(format, args...), err: ErrSyntax}
}

func (p *jsonParser) describeAt(off int) string {
	if off >= len(p.data) {
		return "end of file"
	}
	r, _ := utf8.DecodeRune(p.data[off:])
	return fmt.Sprintf("%q", r)
}

func (p *jsonParser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\r':
		case '\n':
			p.line++
			p.lineStart = p.i + 1
		default:
			return
		}
		p.i++
	}
}

func (p *jsonParser) value() (value, bool) {
	if p.i >= len(p.data) {
		p.fail(p.i, "unexpected end of file, want a value")
		return value{}, false
	}
	start := p.i
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, ok := p.str()
		return value{kind: vStr, pos: p.pos(start), s: s}, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", vBool)
	case c == 'f':
		return p.literal("false", vBool)
	case c == 'n':
		return p.literal("null", vNull)
	}
	p.fail(start, "unexpected %s, want a value", p.describeAt(start))
	return value{}, false
}

func (p *jsonParser) literal(word string, k vkind) (value, bool) {
	start := p.i
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		p.fail(start, "unexpected %s, want a value", p.describeAt(start))
		return value{}, false
	}
	p.i += len(word)
	return value{kind: k, pos: p.pos(start), s: word}, true
}

func (p *jsonParser) enter(off int) bool {
	p.depth++
	if p.depth > MaxDepth {
		p.fail(off, "nesting deeper than %d", MaxDepth)
		return false
	}
	return true
}

func (p *jsonParser) object() (value, bool) {
	start := p.i
	v := value{kind: vMap, pos: p.pos(start)}
	if !p.enter(start) {
		return v, false
	}
	mark := len(p.scratch)
	ok := p.members()
	v.items = p.items(mark)
	p.depth--
	return v, ok
}

// members reads a mapping's keys and values up to its closing brace onto
// p.scratch.
func (p *jsonParser) members() bool {
	p.i++
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			p.fail(p.i, "unexpected %s, want a string key", p.describeAt(p.i))
			return false
		}
		kpos := p.i
		k, ok := p.keyStr()
		if !ok {
			return false
		}
		key := value{kind: vStr, pos: p.pos(kpos), s: k}
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			p.fail(p.i, "unexpected %s, want ':' after key %q", p.describeAt(p.i), k)
			return false
		}
		p.i++
		p.ws()
		var val value
		if p.depth == 1 && k == "nodes" && p.dec != nil && !p.dec.streamed && p.i < len(p.data) && p.data[p.i] == '[' {
			val, ok = p.streamNodes()
		} else {
			val, ok = p.value()
		}
		if !ok {
			return false
		}
		p.scratch = append(p.scratch, key, val)
		p.ws()
		if p.i < len(p.data) && p.data[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.data) && p.data[p.i] == '}' {
			p.i++
			return true
		}
		p.fail(p.i, "unexpected %s, want ',' or '}'", p.describeAt(p.i))
		return false
	}
}

func (p *jsonParser) array() (value, bool) {
	start := p.i
	v := value{kind: vSeq, pos: p.pos(start)}
	if !p.enter(start) {
		return v, false
	}
	mark := len(p.scratch)
	ok := p.elements()
	v.items = p.items(mark)
	p.depth--
	return v, ok
}

// streamNodes reads the top-level nodes list, handing each entry to the
// decoder as soon as it is read. It returns the list without items.
func (p *jsonParser) streamNodes() (value, bool) {
	start := p.i
	v := value{kind: vSeq, pos: p.pos(start)}
	p.dec.streamed, p.dec.streamedPos = true, v.pos
	if !p.enter(start) {
		return v, false
	}
	defer func() { p.depth-- }()
	p.i++
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return v, true
	}
	for i := 0; ; i++ {
		p.ws()
		el, ok := p.value()
		if !ok {
			return v, false
		}
		p.dec.streamNode(i, &el)
		p.ws()
		if p.i < len(p.data) && p.data[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.data) && p.data[p.i] == ']' {
			p.i++
			return v, true
		}
		p.fail(p.i, "unexpected %s, want ',' or ']'", p.describeAt(p.i))
		return v, false
	}
}

// elements reads a list's values up to its closing bracket onto p.scratch.
func (p *jsonParser) elements() bool {
	p.i++
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return true
	}
	for {
		p.ws()
		el, ok := p.value()
		if !ok {
			return false
		}
		p.scratch = append(p.scratch, el)
		p.ws()
		if p.i < len(p.data) && p.data[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.data) && p.data[p.i] == ']' {
			p.i++
			return true
		}
		p.fail(p.i, "unexpected %s, want ',' or ']'", p.describeAt(p.i))
		return false
	}
}

// keyStr scans a mapping key: interned when it has no escapes.
func (p *jsonParser) keyStr() (string, bool) {
	start := p.i
	for j := p.i + 1; j < len(p.data); j++ {
		c := p.data[j]
		if c == '"' {
			p.i = j + 1
			return p.key(p.data[start+1 : j]), true
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	return p.str()
}

// str scans a string starting at the opening quote.
func (p *jsonParser) str() (string, bool) {
	start := p.i
	p.i++
	escaped := false
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			if !escaped {
				return p.text(start+1, p.i-1), true
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.i], &s); err != nil {
				p.fail(start, "bad string: %v", err)
				return "", false
			}
			return s, true
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.data) {
				p.i++
				continue
			}
			switch p.data[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if p.i+k >= len(p.data) || !isHex(p.data[p.i+k]) {
						p.fail(p.i, "bad \\u escape in string")
						return "", false
					}
				}
				p.i += 6
			default:
				p.fail(p.i, "bad escape %s in string", p.describeAt(p.i+1))
				return "", false
			}
		case c < 0x20:
			p.fail(p.i, "control character %q in string", rune(c))
			return "", false
		default:
			p.i++
		}
	}
	p.fail(start, "string not terminated")
	return "", false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *jsonParser) number() (value, bool) {
	start := p.i
	d := p.data
	k := vInt
	if d[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(d) && d[p.i] == '0':
		p.i++
	case p.i < len(d) && isDigit(d[p.i]):
		for p.i < len(d) && isDigit(d[p.i]) {
			p.i++
		}
	default:
		p.fail(p.i, "unexpected %s in number", p.describeAt(p.i))
		return value{}, false
	}
	if p.i < len(d) && d[p.i] == '.' {
		k = vFloat
		p.i++
		if p.i >= len(d) || !isDigit(d[p.i]) {
			p.fail(p.i, "unexpected %s in number, want a digit", p.describeAt(p.i))
			return value{}, false
		}
		for p.i < len(d) && isDigit(d[p.i]) {
			p.i++
		}
	}
	if p.i < len(d) && (d[p.i] == 'e' || d[p.i] == 'E') {
		k = vFloat
		p.i++
		if p.i < len(d) && (d[p.i] == '+' || d[p.i] == '-') {
			p.i++
		}
		if p.i >= len(d) || !isDigit(d[p.i]) {
			p.fail(p.i, "unexpected %s in number, want a digit", p.describeAt(p.i))
			return value{}, false
		}
		for p.i < len(d) && isDigit(d[p.i]) {
			p.i++
		}
	}
	return value{kind: k, pos: p.pos(start), s: p.text(start, p.i)}, true
}
