package graphs

import (
	"bytes"
	"fmt"
	"strings"
)

// Rendition returns a JSON document equivalent to the graph file src:
// ParseJSON(file, rendition) gives the graph Parse(file, src) gives, but
// for Source and positions. A YAML file is read to its value tree
// (aliases expanded, merge keys applied, scalars resolved, with the same
// limits as Parse) and written out as JSON; it is not decoded nor
// validated, so that a file Parse refuses may still have a rendition. A
// JSON file is returned as it is.
//
// Reading JSON is several times faster than reading YAML: a coordinator
// publishes the rendition so that each agent does not read the YAML again.
// A value JSON cannot stand for is an error, and so is a file that does
// not read: the caller then publishes the source. Such values are a key
// that is not a string, and the floats .inf, -.inf and .nan.
func Rendition(file string, src []byte) ([]byte, error) {
	if len(src) > MaxFileSize {
		return nil, tooLarge(file, int64(len(src)))
	}
	if p := checkUTF8(src); p != nil {
		return nil, finish(file, []*Problem{p})
	}
	body := bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if isJSON(file, body) {
		return src, nil
	}
	if renditionFastOn {
		if out, ok := renditionFast(file, body); ok {
			if len(out) > MaxFileSize {
				return nil, fmt.Errorf("%s: no JSON rendition: it would take %d bytes, over the %d MiB limit for graph files", file, len(out), MaxFileSize>>20)
			}
			return out, nil
		}
	}
	sink := &renditionSink{w: renditionWriter{file: file, buf: make([]byte, 0, len(body)+len(body)/4)}}
	d := newDecoder()
	d.sink = sink
	root, perr := parseYAML(body, d)
	if perr != nil {
		return nil, finish(file, []*Problem{perr})
	}
	if sink.w.err != nil {
		return nil, sink.w.err
	}
	w := renditionWriter{file: file, buf: make([]byte, 0, len(sink.w.buf)+4096)}
	if d.streamed {
		w.nodes, w.nodesPos = sink.w.buf, d.streamedPos
	}
	w.value(&root, 0)
	if w.err != nil {
		return nil, w.err
	}
	if w.nodes != nil {
		return nil, fmt.Errorf("%s: no JSON rendition: the nodes list read was not found again", file)
	}
	w.buf = append(w.buf, '\n')
	if len(w.buf) > MaxFileSize {
		return nil, fmt.Errorf("%s: no JSON rendition: it would take %d bytes, over the %d MiB limit for graph files", file, len(w.buf), MaxFileSize>>20)
	}
	return w.buf, nil
}

// ParseJSON parses src as a JSON graph file named file, whatever its
// extension says, as Parse does: relative plugin paths, scripts and
// folders resolve from file's folder. It reads a Rendition of the file.
func ParseJSON(file string, src []byte) (*Graph, error) {
	return parseAs(file, src, false, true)
}

// ParseRendition parses rendition, the Rendition of the graph file named
// file whose content has the sha256 sourceHash (lowercase hex), as
// ParseJSON does, with three differences: Hash returns sourceHash (the
// graph is that file's); Source is the rendition; every position is zero,
// unknown (those read would point into the rendition, which no one reads,
// not into the file). Strings of the graph point into rendition, kept as
// Source: the caller must not modify it afterwards.
func ParseRendition(file string, rendition []byte, sourceHash string) (*Graph, error) {
	if !isSHA256(sourceHash) {
		return nil, fmt.Errorf("%s: rendition of a source hash %q (want 64 lowercase hex digits)", file, sourceHash)
	}
	g, err := parseAs(file, rendition, true, true)
	if err != nil {
		return nil, err
	}
	g.sourceHash = sourceHash
	zeroPositions(g)
	return g, nil
}

// zeroPositions clears every position of g.
func zeroPositions(g *Graph) {
	for name, p := range g.Plugins {
		p.Pos = Position{}
		g.Plugins[name] = p
	}
	for i := range g.Zones {
		g.Zones[i].Pos = Position{}
	}
	for i := range g.Scanners {
		g.Scanners[i].Pos = Position{}
	}
	if g.Incident != nil {
		g.Incident.Pos = Position{}
	}
	for i := range g.Notify {
		g.Notify[i].Pos = Position{}
	}
	for _, n := range g.Nodes {
		n.Pos, n.KindPos = Position{}, Position{}
		if rp := n.RestorePoints; rp != nil {
			rp.Pos = Position{}
			for i := range rp.Points {
				rp.Points[i].Pos = Position{}
			}
		}
	}
}

// renditionSink writes the entries of the nodes list as they are read,
// one a line.
type renditionSink struct {
	w     renditionWriter
	count int
}

func (s *renditionSink) node(v *value) {
	if s.count > 0 {
		s.w.buf = append(s.w.buf, ",\n"...)
	}
	s.count++
	s.w.value(v, 1)
}

func (s *renditionSink) reset() {
	s.w.buf, s.w.err, s.count = s.w.buf[:0], nil, 0
}

// renditionWriter writes a value tree as JSON.
type renditionWriter struct {
	file string
	buf  []byte
	err  error
	// nodes is the top-level nodes list, written already: its entries
	// were streamed (the tree holds the list at nodesPos without items),
	// or written by renditionFast (the key at line nodesLine has no value).
	nodes     []byte
	nodesPos  Position
	nodesLine int
}

// renditionFastOn lets tests compare renditionFast with the usual way.
var renditionFastOn = true

// isNodes reports whether val, under key k of the root mapping, is the
// nodes list written already.
func (w *renditionWriter) isNodes(k, val *value) bool {
	if w.nodes == nil || k.s != "nodes" {
		return false
	}
	if w.nodesLine > 0 {
		return val.kind == vNull && k.pos.Line == w.nodesLine
	}
	return val.kind == vSeq && len(val.items) == 0 && val.pos == w.nodesPos
}

func (w *renditionWriter) fail(v *value, format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("%s:%d:%d: no JSON rendition: %s", w.file, v.pos.Line, v.pos.Column, fmt.Sprintf(format, args...))
	}
}

func (w *renditionWriter) value(v *value, depth int) {
	if w.err != nil {
		return
	}
	switch v.kind {
	case vNull:
		w.buf = append(w.buf, "null"...)
	case vBool:
		if v.s != "true" && v.s != "false" {
			w.fail(v, "boolean %q", v.s)
			return
		}
		w.buf = append(w.buf, v.s...)
	case vInt:
		// YAML integers are read to their decimal form (0x1F, 0o17,
		// 1_000 and +5 are 31, 15, 1000 and 5): JSON reads it alike.
		if !isJSONNumber(v.s) || strings.ContainsAny(v.s, ".eE") {
			w.fail(v, "integer %q", v.s)
			return
		}
		w.buf = append(w.buf, v.s...)
	case vFloat:
		// Floats are read to Go's shortest form ("0.5", "1e+21", "2"):
		// one without a point or an exponent gets ".0", or JSON would
		// read an integer. Infinities and NaN have no JSON form.
		if !isJSONNumber(v.s) {
			w.fail(v, "number %s", v.s)
			return
		}
		w.buf = append(w.buf, v.s...)
		if !strings.ContainsAny(v.s, ".eE") {
			w.buf = append(w.buf, ".0"...)
		}
	case vStr:
		w.str(v.s)
	case vSeq:
		w.buf = append(w.buf, '[')
		for i := range v.items {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.value(&v.items[i], depth+1)
		}
		w.buf = append(w.buf, ']')
	case vMap:
		w.buf = append(w.buf, '{')
		for i := 0; i+1 < len(v.items); i += 2 {
			k, val := &v.items[i], &v.items[i+1]
			if k.kind != vStr {
				w.fail(k, "the key %s is not a string", k.describe())
				return
			}
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.str(k.s)
			w.buf = append(w.buf, ':')
			if depth == 0 && w.isNodes(k, val) {
				w.buf = append(w.buf, "[\n"...)
				w.buf = append(w.buf, w.nodes...)
				w.buf = append(w.buf, "\n]"...)
				w.nodes = nil
				continue
			}
			w.value(val, depth+1)
		}
		w.buf = append(w.buf, '}')
	default:
		w.fail(v, "a %s", v.kind)
	}
}

// str writes s as a JSON string: quotes, backslashes and control
// characters escaped, the rest as it is (s is valid UTF-8).
func (w *renditionWriter) str(s string) {
	w.buf = append(w.buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.buf = append(w.buf, s[start:i]...)
		switch c {
		case '"', '\\':
			w.buf = append(w.buf, '\\', c)
		case '\n':
			w.buf = append(w.buf, '\\', 'n')
		case '\t':
			w.buf = append(w.buf, '\\', 't')
		case '\r':
			w.buf = append(w.buf, '\\', 'r')
		default:
			const hex = "0123456789abcdef"
			w.buf = append(w.buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		start = i + 1
	}
	w.buf = append(w.buf, s[start:]...)
	w.buf = append(w.buf, '"')
}

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}
