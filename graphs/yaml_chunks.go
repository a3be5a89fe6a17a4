package graphs

import (
	"bytes"
	"errors"
	"io"
	"runtime"

	"go.yaml.in/yaml/v3"
)

// yamlChunkMin is the size from which a YAML graph is read in chunks. The
// YAML library builds a tree of the whole document on one core, about ten
// times slower than our JSON reading; a large graph's nodes list is instead
// cut at its entries into chunks that are parsed on every core at once and
// converted in order, one chunk's tree at a time (graphs/BENCH.md). From
// 256 KiB: a 10,000-node graph of 800 KB parses in 115–165 ms instead of
// 210 ms on 2 cores (an agent parses it before its first step).
var yamlChunkMin = 256 << 10

// yamlChunkBytes is about how much of the nodes list one chunk holds.
var yamlChunkBytes = 256 << 10

// yamlChunks is a YAML file cut for chunked reading: the skeleton (the
// file with the lines of the nodes list blanked, so that line numbers hold)
// and the chunks of whole entries of that list.
type yamlChunks struct {
	data    []byte
	keyLine int // line of the `nodes:` key
	indent  int // column of the entries' dashes, 0-based
	first   int // line of the first entry
	chunks  []yamlChunk
}

type yamlChunk struct {
	start, end int // byte range in data
	line       int // line of start
	entries    int // entries starting in it
}

// parseYAMLChunked reads data in chunks when its layout allows it: a
// block mapping whose `nodes:` key, alone on its line at column 1, holds a
// block list. ok is false when it does not, or when a chunk does not parse
// on its own (an alias to an anchor of another chunk, a syntax error…): the
// caller then reads the whole document, which reports any error exactly.
func parseYAMLChunked(data []byte, d *decoder) (v value, p *Problem, ok bool) {
	ch := splitYAML(data)
	if ch == nil {
		return value{}, nil, false
	}
	skel := bytes.Clone(data[:ch.chunks[0].start])
	last := ch.chunks[len(ch.chunks)-1].end
	skel = append(skel, bytes.Repeat([]byte("\n"), bytes.Count(data[ch.chunks[0].start:last], []byte("\n")))...)
	skel = append(skel, data[last:]...)
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(skel))
	if err := dec.Decode(&doc); err != nil || len(doc.Content) != 1 {
		return value{}, nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return value{}, nil, false
	}
	root := doc.Content[0]
	c := &yamlConv{dec: d, chunks: ch}
	c.limit = 10*countYAML(root) + AliasBudget
	v, ok = c.conv(root)
	switch {
	case c.fallback:
		return value{}, nil, false
	case !ok:
		return value{}, c.err, true
	}
	return v, nil, true
}

// splitYAML finds the nodes list and cuts it into chunks of whole entries,
// or returns nil when the file's layout is not the plain one it handles.
func splitYAML(data []byte) *yamlChunks {
	ch := &yamlChunks{data: data, indent: -1}
	line, off := 0, 0
	inList := false
	var cur *yamlChunk
	for off < len(data) {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off + 1
		}
		l := bytes.TrimRight(data[off:end], "\r\n")
		ind := len(l) - len(bytes.TrimLeft(l, " "))
		body := l[ind:]
		switch {
		case bytes.HasPrefix(l, []byte("---")) && line > 1, bytes.HasPrefix(l, []byte("...")), bytes.HasPrefix(l, []byte("%")):
			return nil // several documents, directives: the whole-document path
		case len(body) > 0 && body[0] == '\t':
			return nil
		case len(body) == 0 || body[0] == '#':
			// blank or comment: belongs to whatever surrounds it
		case !inList && ind == 0 && isNodesKey(l):
			if ch.keyLine != 0 {
				return nil // twice: the whole-document path reports it
			}
			ch.keyLine, inList = line, true
		case inList && ch.indent < 0:
			if !isEntryStart(body) {
				return nil // not a block list
			}
			ch.indent, ch.first = ind, line
			ch.chunks = append(ch.chunks, yamlChunk{start: off, line: line})
			cur = &ch.chunks[len(ch.chunks)-1]
			cur.entries++
		case inList && ind == ch.indent && isEntryStart(body):
			if off-cur.start >= yamlChunkBytes {
				cur.end = off
				ch.chunks = append(ch.chunks, yamlChunk{start: off, line: line})
				cur = &ch.chunks[len(ch.chunks)-1]
			}
			cur.entries++
		case inList && ind <= ch.indent:
			if ind != 0 {
				return nil
			}
			cur.end, inList = off, false // the list ends: a top-level key
		}
		off = end
	}
	if ch.keyLine == 0 || cur == nil || len(ch.chunks) < 2 {
		return nil
	}
	if inList {
		cur.end = len(data)
	}
	return ch
}

func isNodesKey(l []byte) bool {
	rest, ok := bytes.CutPrefix(l, []byte("nodes:"))
	rest = bytes.TrimLeft(rest, " \t")
	return ok && (len(rest) == 0 || rest[0] == '#')
}

func isEntryStart(body []byte) bool {
	return bytes.Equal(body, []byte("-")) || bytes.HasPrefix(body, []byte("- "))
}

// parsedChunk is a chunk's YAML tree, or why it did not parse.
type parsedChunk struct {
	seq *yaml.Node
	err error
}

// streamChunks parses the chunks on every core, a few ahead of the
// conversion, and converts their entries in order, handing each to the
// decoder as streamNodes does.
func (c *yamlConv) streamChunks() (value, bool) {
	ch := c.chunks
	pos := Position{Line: ch.first, Column: ch.indent + 1}
	c.dec.streamed, c.dec.streamedPos = true, pos
	workers := runtime.GOMAXPROCS(0)
	results := make([]chan parsedChunk, len(ch.chunks))
	for i := range results {
		results[i] = make(chan parsedChunk, 1)
	}
	jobs := make(chan int)
	stop := make(chan struct{})
	defer close(stop)
	// At most this many chunks parsed and not yet converted: memory holds
	// a few chunks' trees, not the file's.
	ahead := make(chan struct{}, 2*workers)
	for range workers {
		go func() {
			for i := range jobs {
				results[i] <- parseChunk(ch, i)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range ch.chunks {
			select {
			case ahead <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	n := 0
	for i, k := range ch.chunks {
		r := <-results[i]
		<-ahead
		if r.err != nil || len(r.seq.Content) != k.entries {
			c.fallback = true
			return value{}, false
		}
		cc := &yamlConv{dec: c.dec, depth: 2, lineOff: k.line - 1}
		cc.limit = 10*countYAML(r.seq) + AliasBudget
		for j, el := range r.seq.Content {
			ev, ok := cc.conv(el)
			if !ok {
				// The alias budget is the whole file's: let the whole
				// document's reading decide.
				c.fallback = errors.Is(cc.err.err, ErrAliasBomb)
				c.err = cc.err
				return value{}, false
			}
			c.dec.streamNode(n, &ev)
			n++
			r.seq.Content[j] = nil
		}
	}
	return value{kind: vSeq, pos: pos}, true
}

// parseChunk parses chunk i alone: a block list indented as in the file.
func parseChunk(ch *yamlChunks, i int) parsedChunk {
	k := ch.chunks[i]
	var doc yaml.Node
	if err := yaml.Unmarshal(ch.data[k.start:k.end], &doc); err != nil {
		return parsedChunk{err: err}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode {
		return parsedChunk{err: errors.New("not a list")}
	}
	return parsedChunk{seq: doc.Content[0]}
}
