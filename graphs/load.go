package graphs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxFileSize is the largest graph file Load and Parse accept: 64 MiB. A
// 150,000-node graph written by the generator takes about 25 MB in JSON
// and 30 MB in YAML.
const MaxFileSize = 64 << 20

// Load reads the graph file at path and parses it (see Parse). The size is
// checked before the content is read.
func Load(path string) (*Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read graph %q: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, tooLarge(path, fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read graph %q: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(path, int64(len(data)))
	}
	// data is ours and stays alive as g.Source: strings may point into it.
	return parse(path, data, true)
}

func tooLarge(file string, size int64) error {
	what := fmt.Sprintf("%d bytes", size)
	if size > MaxFileSize {
		what = fmt.Sprintf("%.1f MiB", float64(size)/(1<<20))
	}
	return &ValidationError{Problems: []*Problem{{
		File: file, Message: fmt.Sprintf("file is %s, over the %d MiB limit for graph files", what, MaxFileSize>>20),
		err: ErrTooLarge,
	}}}
}

// Parse decodes a graph file's content and validates it, reporting every
// problem at once as a *ValidationError. file names the input in messages
// and chooses the format: ".json" is JSON, ".yaml" and ".yml" are YAML,
// anything else is JSON when the first non-blank byte is '{' and YAML
// otherwise. The returned Graph has File, Dir (the absolute folder of file)
// and Source set; nodes without a criticality get "normal".
func Parse(file string, data []byte) (*Graph, error) {
	return parse(file, data, false)
}

// parse is Parse; with alias set, strings read from JSON point into data
// instead of being copied (Load owns its buffer and keeps it as Source, so
// that 100,000 ids and dependencies cost no allocation of their own).
func parse(file string, data []byte, alias bool) (*Graph, error) {
	return parseAs(file, data, alias, false)
}

// parseAs is parse; with asJSON set, data is read as JSON whatever file's
// extension (ParseJSON).
func parseAs(file string, data []byte, alias, asJSON bool) (*Graph, error) {
	if len(data) > MaxFileSize {
		return nil, tooLarge(file, int64(len(data)))
	}
	if p := checkUTF8(data); p != nil {
		return nil, finish(file, []*Problem{p})
	}
	body := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	d := newDecoder()
	d.expectNodes(body)
	var root value
	var perr *Problem
	if asJSON || isJSON(file, body) {
		root, perr = parseJSON(body, alias, d)
	} else {
		root, perr = parseYAML(body, d)
	}
	if perr != nil {
		return nil, finish(file, []*Problem{perr})
	}
	d.decodeGraph(&root)
	if len(d.g.Nodes) > 0 {
		d.validate()
	}
	if len(d.probs) > 0 {
		return nil, finish(file, d.probs)
	}
	g := d.g
	g.File = file
	g.Source = data
	if file != "" {
		if abs, err := filepath.Abs(file); err == nil {
			g.Dir = filepath.Dir(abs)
		}
	}
	return g, nil
}

func isJSON(file string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		return true
	case ".yaml", ".yml":
		return false
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// finish sets the file name on every problem and sorts them by position.
func finish(file string, probs []*Problem) error {
	for _, p := range probs {
		p.File = file
	}
	sort.SliceStable(probs, func(i, j int) bool {
		if probs[i].Line != probs[j].Line {
			return probs[i].Line < probs[j].Line
		}
		return probs[i].Col < probs[j].Col
	})
	return &ValidationError{Problems: probs}
}

// checkUTF8 returns a problem at the first invalid UTF-8 byte, if any.
func checkUTF8(data []byte) *Problem {
	if utf8.Valid(data) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Problem{Line: line, Col: col, Value: fmt.Sprintf("%#x", data[i]),
				Message: fmt.Sprintf("invalid UTF-8: byte %#x (graph files must be UTF-8 text)", data[i]), err: ErrEncoding}
		}
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i += size
	}
	return nil
}
