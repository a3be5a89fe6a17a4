package graphs

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// renditionFast is Rendition's fast way for the common layout of a large
// graph: a nodes list (found as the chunked reading finds it, splitYAML)
// whose every entry is a flow mapping on one line of plain words, whole
// numbers, simply quoted strings, and lists and mappings of them:
//
//   - {id: n1, kind: application, plugin: noop, depends_on: [n0], title: "A b"}
//
// Those lines are written out as JSON directly, without the YAML library,
// which takes ten times longer; the rest of the file (the skeleton) is read
// as usual. ok is false when the file is not so, for any line: Rendition
// then reads the whole file the usual way. The output is byte for byte
// what the usual way writes (TestRenditionFastSame, FuzzRenditionFast).
func renditionFast(file string, body []byte) (out []byte, ok bool) {
	out, _, ok = renditionLines(file, body)
	return out, ok
}

// renditionLines is renditionFast; it also says how many entries the YAML
// library read (slowLine).
func renditionLines(file string, body []byte) (out []byte, slow int, ok bool) {
	ch := splitYAML(body)
	if ch == nil {
		return nil, 0, false
	}
	start, end := ch.chunks[0].start, ch.chunks[len(ch.chunks)-1].end
	nodes := make([]byte, 0, (end-start)+(end-start)/4)
	p := flowLine{w: renditionWriter{file: file, buf: nodes}}
	count := 0
	for off := start; off < end; {
		eol := bytes.IndexByte(body[off:end], '\n')
		next := end
		if eol >= 0 {
			next = off + eol + 1
		} else {
			eol = end - off
		}
		line := bytes.TrimSuffix(body[off:off+eol], []byte("\r"))
		off = next
		t := bytes.TrimLeft(line, " ")
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if len(line)-len(t) != ch.indent || !bytes.HasPrefix(t, []byte("- {")) {
			return nil, 0, false
		}
		if count > 0 {
			p.w.buf = append(p.w.buf, ",\n"...)
		}
		count++
		p.s, p.i = t, 2
		mark := len(p.w.buf)
		if !p.mapping(0) || !p.rest() {
			// An entry of another form: read by the YAML library alone.
			p.w.buf = p.w.buf[:mark]
			if !p.slowLine() {
				return nil, 0, false
			}
			slow++
		}
	}
	// The skeleton: the file with the list's lines blanked, so that line
	// numbers hold (as parseYAMLChunked makes it).
	skel := bytes.Clone(body[:start])
	skel = append(skel, bytes.Repeat([]byte("\n"), bytes.Count(body[start:end], []byte("\n")))...)
	skel = append(skel, body[end:]...)
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(skel))
	if err := dec.Decode(&doc); err != nil || len(doc.Content) != 1 {
		return nil, 0, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, 0, false
	}
	c := &yamlConv{}
	c.limit = 10*countYAML(doc.Content[0]) + AliasBudget
	root, convOK := c.conv(doc.Content[0])
	if !convOK || root.kind != vMap {
		return nil, 0, false
	}
	w := renditionWriter{file: file, buf: make([]byte, 0, len(p.w.buf)+4096), nodes: p.w.buf, nodesLine: ch.keyLine}
	w.value(&root, 0)
	if w.err != nil || w.nodes != nil {
		return nil, 0, false
	}
	return append(w.buf, '\n'), slow, true
}

// flowLine reads a one-line flow mapping s from i and writes it as JSON.
type flowLine struct {
	s []byte
	i int
	w renditionWriter
}

// slowLine writes the entry p.s, a list entry on one line, as the YAML
// library reads it. It fails when the line does not read alone (an alias
// of an anchor on another line, a mapping that goes on to the next line…).
func (p *flowLine) slowLine() bool {
	var doc yaml.Node
	if err := yaml.Unmarshal(p.s, &doc); err != nil || len(doc.Content) != 1 {
		return false
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 {
		return false
	}
	c := &yamlConv{depth: 2}
	c.limit = 10*countYAML(seq) + AliasBudget
	v, ok := c.conv(seq.Content[0])
	if !ok {
		return false
	}
	p.w.value(&v, 1)
	return p.w.err == nil
}

// maxFlowDepth bounds the nesting the fast way reads.
const maxFlowDepth = 32

func (p *flowLine) spaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// rest checks that only spaces follow the entry.
func (p *flowLine) rest() bool {
	p.spaces()
	return p.i == len(p.s)
}

// mapping reads {key: value, …} at p.i.
func (p *flowLine) mapping(depth int) bool {
	if depth > maxFlowDepth || p.i >= len(p.s) || p.s[p.i] != '{' {
		return false
	}
	p.i++
	p.w.buf = append(p.w.buf, '{')
	p.spaces()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.w.buf = append(p.w.buf, '}')
		return true
	}
	for n := 0; ; n++ {
		if n > 0 {
			p.w.buf = append(p.w.buf, ',')
		}
		k, kind, ok := p.scalar()
		if !ok || kind != vStr {
			return false
		}
		p.w.str(k)
		// ": " and the value; a key ends at ':' (never part of a word).
		if p.i+1 >= len(p.s) || p.s[p.i] != ':' || p.s[p.i+1] != ' ' {
			return false
		}
		p.i += 2
		p.spaces()
		p.w.buf = append(p.w.buf, ':')
		if !p.value(depth) {
			return false
		}
		p.spaces()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case '}':
			p.i++
			p.w.buf = append(p.w.buf, '}')
			return true
		case ',':
			p.i++
			p.spaces()
		default:
			return false
		}
	}
}

// seq reads [value, …] at p.i.
func (p *flowLine) seq(depth int) bool {
	if depth > maxFlowDepth {
		return false
	}
	p.i++
	p.w.buf = append(p.w.buf, '[')
	p.spaces()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.w.buf = append(p.w.buf, ']')
		return true
	}
	for n := 0; ; n++ {
		if n > 0 {
			p.w.buf = append(p.w.buf, ',')
		}
		if !p.value(depth) {
			return false
		}
		p.spaces()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ']':
			p.i++
			p.w.buf = append(p.w.buf, ']')
			return true
		case ',':
			p.i++
			p.spaces()
		default:
			return false
		}
	}
}

func (p *flowLine) value(depth int) bool {
	if p.i >= len(p.s) {
		return false
	}
	switch p.s[p.i] {
	case '{':
		return p.mapping(depth + 1)
	case '[':
		return p.seq(depth + 1)
	}
	s, kind, ok := p.scalar()
	if !ok {
		return false
	}
	switch kind {
	case vStr:
		p.w.str(s)
	default: // an int, a bool or null, written as JSON writes them
		p.w.buf = append(p.w.buf, s...)
	}
	return true
}

// durationWord is the form of the words starting with a digit that the
// fast way takes, as strings.
var durationWord = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[nusmhdw]+([0-9]+(\.[0-9]+)?[nusmhdw]+)*$`)

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// wordByte is what the fast way takes in a plain word after its first
// letter: nothing YAML gives a meaning to in a flow collection.
func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-'
}

// scalar reads a scalar at p.i: a plain one of words (a letter first,
// then wordByte, words one space apart), a whole number (0, or 1 to 18
// digits not starting with 0), or a quoted string without escapes. It
// returns the text to write and what the YAML library resolves it to.
func (p *flowLine) scalar() (string, vkind, bool) {
	s, i := p.s, p.i
	if i >= len(s) {
		return "", 0, false
	}
	switch c := s[i]; {
	case c == '"' || c == '\'':
		j := i + 1
		for j < len(s) && s[j] != c {
			b := s[j]
			if b < 0x80 {
				if b < 0x20 || b == '\\' || b == '"' || b == '\'' || b == 0x7f {
					return "", 0, false
				}
				j++
				continue
			}
			// Beyond ASCII, what YAML prints as it is: no C1 control, no
			// line or paragraph separator, no byte order mark (the input
			// is valid UTF-8).
			r, size := utf8.DecodeRune(s[j:])
			if r < 0xA0 || r == 0x2028 || r == 0x2029 || r == 0xFEFF || r == 0xFFFE || r == 0xFFFF {
				return "", 0, false
			}
			j += size
		}
		if j >= len(s) {
			return "", 0, false
		}
		p.i = j + 1
		return string(s[i+1 : j]), vStr, true
	case c >= '0' && c <= '9':
		j := i + 1
		for j < len(s) && (wordByte(s[j]) || s[j] == '.') {
			j++
		}
		if j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != ' ' {
			return "", 0, false
		}
		w := s[i:j]
		p.i = j
		switch {
		case len(w) == 1 || c != '0' && len(w) <= 18 && allDigits(w):
			return string(w), vInt, true
		case durationWord.Match(w):
			// A duration (1ms, 1h30m, 2.5s): no number nor date to
			// YAML, which has no unit in n, u, s, m, h, d, w.
			return string(w), vStr, true
		}
		return "", 0, false
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		j := i + 1
		for {
			for j < len(s) && wordByte(s[j]) {
				j++
			}
			if j+1 < len(s) && s[j] == ' ' && wordByte(s[j+1]) {
				j++
				continue
			}
			break
		}
		if j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != ' ' && s[j] != ':' {
			return "", 0, false
		}
		p.i = j
		switch w := string(s[i:j]); w {
		case "true", "True", "TRUE":
			return "true", vBool, true
		case "false", "False", "FALSE":
			return "false", vBool, true
		case "null", "Null", "NULL":
			return "null", vNull, true
		default:
			return w, vStr, true
		}
	}
	return "", 0, false
}
