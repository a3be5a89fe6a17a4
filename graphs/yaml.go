package graphs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// AliasBudget is how many values YAML alias expansion may produce beyond
// ten times the number of values written in the file. Past it the file is
// refused as an alias bomb ("billion laughs"): a few hundred bytes of nested
// aliases would otherwise expand to billions of values.
const AliasBudget = 10000

// parseYAML decodes YAML into a value tree with positions. The YAML library
// builds a yaml.Node tree (it neither expands aliases nor checks keys there);
// we walk it ourselves, expanding aliases within a budget and keeping every
// line:col.
//
// With d set, the entries of the top-level nodes list are converted and
// handed to d.streamNode one at a time, and dropped from the YAML tree
// once converted, so that the two trees never both hold every node.
func parseYAML(data []byte, d *decoder) (value, *Problem) {
	if d != nil && len(data) >= yamlChunkMin {
		if v, p, ok := parseYAMLChunked(data, d); ok {
			return v, p
		}
		sink := d.sink
		*d = *newDecoder() // the chunked reading gave up half way
		if d.sink = sink; sink != nil {
			sink.reset()
		} else {
			d.expectNodes(data)
		}
	}
	return parseYAMLWhole(data, d)
}

// parseYAMLWhole parses data as one document (see parseYAML).
func parseYAMLWhole(data []byte, d *decoder) (value, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return value{}, &Problem{Line: 1, Col: 1, Message: "not a graph file: the file is empty", err: ErrSyntax}
		}
		return value{}, yamlSyntaxProblem(data, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return value{}, &Problem{Line: next.Line, Col: next.Column, Message: "not a graph file: more than one YAML document (want exactly one)", err: ErrSyntax}
	} else if !errors.Is(err, io.EOF) {
		return value{}, yamlSyntaxProblem(data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return value{}, &Problem{Line: 1, Col: 1, Message: "not a graph file: the file is empty", err: ErrSyntax}
		}
		root = root.Content[0]
	}
	c := &yamlConv{dec: d}
	c.limit = 10*countYAML(root) + AliasBudget
	v, ok := c.conv(root)
	if !ok {
		return value{}, c.err
	}
	return v, nil
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '([^']*)' referenced`)
)

// yamlParserProblems are the messages of the YAML library's parser stage:
// it reports their line 0-based (its scanner errors are 1-based).
var yamlParserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found undefined tag handle",
}

// yamlSyntaxProblem turns a YAML library error into a problem. The library
// names the line but not the column: the column given is that of the
// line's first non-blank character. An unknown anchor is found in the text.
func yamlSyntaxProblem(data []byte, err error) *Problem {
	msg := err.Error()
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		line, col := 1, 1
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line, col = lineCol(data, i)
		}
		return &Problem{Line: line, Col: col, Value: m[1], Message: fmt.Sprintf("not valid YAML: alias *%s has no anchor &%s before it", m[1], m[1]), err: ErrSyntax}
	}
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if n, perr := strconv.Atoi(m[1]); perr == nil && n > 0 {
			line = n
		}
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	for _, p := range yamlParserProblems {
		if msg == p {
			line++
			break
		}
	}
	if line < 1 {
		line = 1
	}
	if last := bytes.Count(data, []byte("\n")) + 1; line > last {
		line = last
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	return &Problem{Line: line, Col: firstNonBlank(data, line), Message: "not valid YAML: " + msg, err: ErrSyntax}
}

// lineCol returns the 1-based line and column (in characters) of byte
// offset off.
func lineCol(data []byte, off int) (int, int) {
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(data[start:off])
}

// firstNonBlank returns the 1-based column of the first non-blank character
// of line (1 when the line is blank or beyond the end).
func firstNonBlank(data []byte, line int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return 1
		}
		off += i + 1
	}
	col := 1
	for off < len(data) && (data[off] == ' ' || data[off] == '\t') {
		off++
		col++
	}
	return col
}

// countYAML counts the values written in the file, not following aliases.
func countYAML(n *yaml.Node) int {
	count := 1
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		count += len(top.Content)
		stack = append(stack, top.Content...)
	}
	return count
}

type yamlConv struct {
	used, limit int
	depth       int
	err         *Problem
	dec         *decoder
	// lineOff is added to the library's line numbers: a chunk of the file
	// parsed alone starts at line 1 (yaml_chunks.go).
	lineOff int
	// chunks, when set, stands for the top-level nodes list: the skeleton
	// of a chunked file has an empty nodes key at line chunks.keyLine.
	chunks *yamlChunks
	// fallback is set when the chunked reading gave up: the caller reads
	// the whole document instead.
	fallback bool
}

func (c *yamlConv) pos(n *yaml.Node) Position {
	return Position{Line: n.Line + c.lineOff, Column: n.Column}
}

func (c *yamlConv) fail(n *yaml.Node, sentinel error, format string, args ...any) bool {
	if c.err == nil {
		c.err = &Problem{Line: n.Line + c.lineOff, Col: n.Column, Message: fmt.Sprintf(format, args...), err: sentinel}
	}
	return false
}

func (c *yamlConv) conv(n *yaml.Node) (value, bool) {
	c.used++
	if c.used > c.limit {
		return value{}, c.fail(n, ErrAliasBomb, "YAML aliases expand to more than %d values: refused as an alias bomb", c.limit)
	}
	pos := c.pos(n)
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return value{}, c.fail(n, ErrSyntax, "not valid YAML: alias %q has no anchor", n.Value)
		}
		c.depth++
		defer func() { c.depth-- }()
		if c.depth > MaxDepth {
			return value{}, c.fail(n, ErrAliasBomb, "YAML aliases nest deeper than %d", MaxDepth)
		}
		v, ok := c.conv(n.Alias)
		v.pos = pos
		return v, ok
	case yaml.ScalarNode:
		return c.scalar(n)
	case yaml.SequenceNode:
		c.depth++
		defer func() { c.depth-- }()
		if c.depth > MaxDepth {
			return value{}, c.fail(n, ErrSyntax, "nesting deeper than %d", MaxDepth)
		}
		v := value{kind: vSeq, pos: pos, items: make([]value, 0, len(n.Content))}
		for _, el := range n.Content {
			ev, ok := c.conv(el)
			if !ok {
				return v, false
			}
			v.items = append(v.items, ev)
		}
		return v, true
	case yaml.MappingNode:
		c.depth++
		defer func() { c.depth-- }()
		if c.depth > MaxDepth {
			return value{}, c.fail(n, ErrSyntax, "nesting deeper than %d", MaxDepth)
		}
		return c.mapping(n, pos)
	}
	return value{}, c.fail(n, ErrSyntax, "not a graph file: unexpected YAML node")
}

func (c *yamlConv) mapping(n *yaml.Node, pos Position) (value, bool) {
	v := value{kind: vMap, pos: pos, items: make([]value, 0, len(n.Content))}
	var merged []value
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			m, ok := c.merge(val)
			if !ok {
				return v, false
			}
			merged = append(merged, m...)
			continue
		}
		kv, ok := c.conv(k)
		if !ok {
			return v, false
		}
		var vv value
		if c.depth == 1 && c.dec != nil && !c.dec.streamed && kv.kind == vStr && kv.s == "nodes" && val.Kind == yaml.SequenceNode {
			vv, ok = c.streamNodes(val)
		} else if c.depth == 1 && c.chunks != nil && !c.dec.streamed && kv.kind == vStr && kv.s == "nodes" && k.Line == c.chunks.keyLine {
			vv, ok = c.streamChunks()
		} else {
			vv, ok = c.conv(val)
		}
		if !ok {
			return v, false
		}
		v.items = append(v.items, kv, vv)
	}
	if len(merged) > 0 {
		// Keys written in the mapping win over merged ones; among merged
		// mappings the first one listed wins (YAML merge key semantics).
		have := make(map[string]bool, len(v.items)/2)
		for i := 0; i < len(v.items); i += 2 {
			have[v.items[i].s] = true
		}
		for i := 0; i+1 < len(merged); i += 2 {
			if k := merged[i].s; !have[k] {
				have[k] = true
				v.items = append(v.items, merged[i], merged[i+1])
			}
		}
	}
	return v, true
}

// streamNodes converts the top-level nodes list entry by entry, handing
// each to the decoder and dropping it from the YAML tree (aliases keep
// their own pointers to what they name). It returns the list without items.
func (c *yamlConv) streamNodes(n *yaml.Node) (value, bool) {
	pos := c.pos(n)
	c.dec.streamed, c.dec.streamedPos = true, pos
	c.used++
	c.depth++
	defer func() { c.depth-- }()
	for i, el := range n.Content {
		ev, ok := c.conv(el)
		if !ok {
			return value{}, false
		}
		c.dec.streamNode(i, &ev)
		n.Content[i] = nil
	}
	return value{kind: vSeq, pos: pos}, true
}

// merge returns the key/value pairs of a `<<` merge value: a mapping (or
// an alias of one), or a list of them.
func (c *yamlConv) merge(n *yaml.Node) ([]value, bool) {
	mv, ok := c.conv(n)
	if !ok {
		return nil, false
	}
	switch mv.kind {
	case vMap:
		return mv.items, true
	case vSeq:
		var out []value
		for _, el := range mv.items {
			if el.kind != vMap {
				return nil, c.fail(n, ErrSchema, "merge key <<: want a mapping or a list of mappings, got %s", el.describe())
			}
			out = append(out, el.items...)
		}
		return out, true
	}
	return nil, c.fail(n, ErrSchema, "merge key <<: want a mapping or a list of mappings, got %s", mv.describe())
}

func (c *yamlConv) scalar(n *yaml.Node) (value, bool) {
	pos := c.pos(n)
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		return value{kind: vStr, pos: pos, s: n.Value}, true
	case "!!null":
		return value{kind: vNull, pos: pos, s: "null"}, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return value{}, c.fail(n, ErrSyntax, "not valid YAML: bad boolean %q", n.Value)
		}
		return value{kind: vBool, pos: pos, s: strconv.FormatBool(b)}, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return value{kind: vInt, pos: pos, s: strconv.FormatInt(i, 10)}, true
		}
		// Too big for int64: keep it as a number.
		var f float64
		if err := n.Decode(&f); err != nil {
			return value{}, c.fail(n, ErrSyntax, "not valid YAML: bad integer %q", n.Value)
		}
		return value{kind: vFloat, pos: pos, s: formatFloat(f)}, true
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return value{}, c.fail(n, ErrSyntax, "not valid YAML: bad number %q", n.Value)
		}
		return value{kind: vFloat, pos: pos, s: formatFloat(f)}, true
	default:
		return value{}, c.fail(n, ErrSchema, "unsupported YAML tag %s on %q (want plain strings, numbers, booleans, lists and mappings)", tag, n.Value)
	}
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	if math.IsInf(f, -1) {
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
