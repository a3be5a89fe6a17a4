package graphs

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// IDPattern is the safe charset of node ids and plugin names: a letter or
// digit, then up to 127 letters, digits, '.', '_' or '-'. Ids are
// case-sensitive ("AD" and "ad" are two nodes). The charset keeps ids safe in
// file names, shell arguments, DOT and Mermaid.
const IDPattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`

var idRE = regexp.MustCompile(IDPattern)

const idHelp = "want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"

// validID reports whether s matches IDPattern (without the regexp engine:
// this runs once per id and per dependency).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// nodeSrc keeps where each field of a node was written, for the problems
// found after decoding. It is dropped once Parse returns.
type nodeSrc struct {
	id, kind, plugin, between Position
	deps                      []Position // one per DependsOn entry
	ends                      []Position // one per Between entry
	depIdx, endIdx, afterIdx  []int32    // node index of each entry, -1 when unknown
	with                      *value
	approvals                 Position
	hasID, hasKind, hasPlugin bool
	badEnds                   bool // between had a wrong type, reported
	clean                     cleanSrc
}

// decoder walks the value tree of a graph file into a Graph, collecting
// every problem.
type decoder struct {
	probs []*Problem
	g     *Graph
	src   []nodeSrc
	// streamed is set when the JSON scanner handed the nodes over one by
	// one as it read them (see jsonParser.streamNodes): the list at
	// streamedPos holds no items, its nodes are decoded already.
	streamed      bool
	streamedPos   Position
	streamedCount int
	// sink, when set, takes the streamed nodes instead of decoding them
	// (Rendition writes them out as JSON).
	sink nodeSink
}

// nodeSink takes the entries of the top-level nodes list as they are read.
type nodeSink interface {
	node(v *value)
	// reset forgets the entries taken: the chunked YAML reading gave up
	// half way and the whole document is read again.
	reset()
}

func newDecoder() *decoder {
	return &decoder{g: &Graph{Plugins: map[string]PluginRef{}}}
}

// expectNodes sizes the node slices from a cheap count of `id` keys, so
// that streaming does not regrow them.
func (d *decoder) expectNodes(data []byte) {
	guess := bytes.Count(data, []byte(`"id"`)) + bytes.Count(data, []byte("id:"))
	if max := len(data)/16 + 1; guess > max {
		guess = max
	}
	d.g.Nodes = make([]*Node, 0, guess)
	d.src = make([]nodeSrc, 0, guess)
}

// streamNode decodes the i-th node as soon as the JSON scanner has read
// it, so that the whole file's value tree never exists at once.
func (d *decoder) streamNode(i int, v *value) {
	d.streamedCount++
	if d.sink != nil {
		d.sink.node(v)
		return
	}
	d.decodeNode(i, v)
}

func (d *decoder) add(pos Position, node, field, val string, sentinel error, format string, args ...any) {
	d.probs = append(d.probs, &Problem{
		Line: pos.Line, Col: pos.Column, Node: node, Field: field, Value: val,
		Message: fmt.Sprintf(format, args...), err: sentinel,
	})
}

// typeErr reports a value of the wrong type.
func (d *decoder) typeErr(v *value, node, field, want string) {
	d.add(v.pos, node, field, v.s, ErrSchema, "%s: want %s, got %s", field, want, v.describe())
}

// fields walks a mapping whose keys are the fixed names in allowed, calling
// fn for each; it reports non-string, unknown and duplicate keys.
func (d *decoder) fields(v *value, node, where string, allowed []string, fn func(key string, val *value)) {
	if v.kind != vMap {
		d.typeErr(v, node, where, "a mapping")
		return
	}
	var seen uint64 // allowed has fewer than 64 names
	for i := 0; i+1 < len(v.items); i += 2 {
		k, val := &v.items[i], &v.items[i+1]
		if k.kind != vStr {
			d.add(k.pos, node, where, k.s, ErrSchema, "%s: want a string key, got %s", where, k.describe())
			continue
		}
		idx := -1
		for j, a := range allowed {
			if a == k.s {
				idx = j
				break
			}
		}
		path := joinField(where, k.s)
		if idx < 0 {
			hint := ""
			if s := closestField(k.s, allowed); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			d.add(k.pos, node, path, k.s, ErrSchema, "unknown field %s (%swant one of %s)", quoteShort(k.s), hint, strings.Join(allowed, ", "))
			continue
		}
		if seen&(1<<idx) != 0 {
			d.add(k.pos, node, path, k.s, ErrSchema, "duplicate key %q", k.s)
			continue
		}
		seen |= 1 << idx
		fn(k.s, val)
	}
}

func joinField(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}

func (d *decoder) str(v *value, node, field string) (string, bool) {
	if v.kind != vStr {
		d.typeErr(v, node, field, "a string")
		return "", false
	}
	return v.s, true
}

func (d *decoder) nonNegInt(v *value, node, field string) (int, bool) {
	if v.kind != vInt {
		d.typeErr(v, node, field, "a whole number")
		return 0, false
	}
	n, err := strconv.Atoi(v.s)
	if err == nil && n < 0 {
		d.add(v.pos, node, field, v.s, ErrBadValue, "%s: %s is negative (want 0 or more)", field, v.s)
		return 0, false
	}
	if err != nil || n > 1_000_000 {
		d.add(v.pos, node, field, v.s, ErrBadValue, "%s: %s is out of range (want 0 to 1000000)", field, v.s)
		return 0, false
	}
	return n, true
}

func (d *decoder) duration(v *value, node, field string, positive bool) (time.Duration, bool) {
	s, ok := d.str(v, node, field)
	if !ok {
		return 0, false
	}
	dur, err := ParseDuration(s)
	if err != nil {
		d.add(v.pos, node, field, s, ErrBadValue, "%s: bad duration %s (%s)", field, quoteShort(s), durationHelp)
		return 0, false
	}
	if positive && dur <= 0 {
		d.add(v.pos, node, field, s, ErrBadValue, "%s: duration %s must be more than zero", field, quoteShort(s))
		return 0, false
	}
	return dur, true
}

// strList decodes a list of strings, returning each with its position.
func (d *decoder) strList(v *value, node, field string) ([]string, []Position) {
	if v.kind != vSeq {
		d.typeErr(v, node, field, "a list of node ids")
		return nil, nil
	}
	out := make([]string, 0, len(v.items))
	pos := make([]Position, 0, len(v.items))
	for i := range v.items {
		el := &v.items[i]
		if el.kind != vStr {
			d.typeErr(el, node, field, "a node id (string)")
			continue
		}
		out = append(out, el.s)
		pos = append(pos, el.pos)
	}
	return out, pos
}

var topFields = []string{"version", "name", "plugins", "defaults", "limits", "nodes", "zones", "scanners", "incident", "notify"}

// decodeGraph walks the root value. It fills d.g and d.src.
func (d *decoder) decodeGraph(root *value) {
	if root.kind != vMap {
		d.add(root.pos, "", "", "", ErrSyntax, "not a graph file: want a mapping with version and nodes at the top, got %s", root.describe())
		return
	}
	var hasVersion, hasNodes bool
	var nodesVal *value
	d.fields(root, "", "", topFields, func(key string, v *value) {
		if v.kind == vNull && key != "version" {
			if key == "nodes" {
				hasNodes = true
				nodesVal = v
			}
			return // an optional field left empty is absent
		}
		switch key {
		case "version":
			hasVersion = true
			if v.kind != vInt {
				d.add(v.pos, "", key, v.s, ErrVersion, "version: want 1, got %s", v.describe())
				return
			}
			if v.s != "1" {
				d.add(v.pos, "", key, v.s, ErrVersion, "version %s is not supported (want 1)", v.s)
				return
			}
			d.g.Version = 1
		case "name":
			d.g.Name, _ = d.str(v, "", key)
		case "plugins":
			d.decodePlugins(v)
		case "defaults":
			d.decodeDefaults(v)
		case "limits":
			d.decodeLimits(v)
		case "zones":
			d.decodeZones(v)
		case "scanners":
			d.decodeScanners(v)
		case "incident":
			d.decodeIncident(v)
		case "notify":
			d.decodeNotify(v)
		case "nodes":
			hasNodes = true
			nodesVal = v
		}
	})
	if !hasVersion {
		d.add(root.pos, "", "version", "", ErrVersion, "missing version (want version: 1)")
	}
	if !hasNodes {
		d.add(root.pos, "", "nodes", "", ErrEmpty, "empty graph: no nodes field (want nodes: a list of nodes)")
		return
	}
	if nodesVal.kind == vNull {
		d.add(nodesVal.pos, "", "nodes", "", ErrEmpty, "empty graph: nodes has no entries (want at least one node)")
		return
	}
	if nodesVal.kind != vSeq {
		d.typeErr(nodesVal, "", "nodes", "a list of nodes")
		return
	}
	if d.streamed && nodesVal.pos == d.streamedPos {
		if d.streamedCount == 0 {
			d.add(nodesVal.pos, "", "nodes", "", ErrEmpty, "empty graph: nodes is an empty list (want at least one node)")
		}
		return
	}
	if len(nodesVal.items) == 0 {
		d.add(nodesVal.pos, "", "nodes", "", ErrEmpty, "empty graph: nodes is an empty list (want at least one node)")
		return
	}
	if d.streamed { // another nodes key was streamed: a duplicate, reported
		return
	}
	d.g.Nodes = make([]*Node, 0, len(nodesVal.items))
	d.src = make([]nodeSrc, 0, len(nodesVal.items))
	for i := range nodesVal.items {
		d.decodeNode(i, &nodesVal.items[i])
	}
}

var pluginFields = []string{"path", "sha256", "max_parallel", "start_timeout"}

func (d *decoder) decodePlugins(v *value) {
	if v.kind != vMap {
		d.typeErr(v, "", "plugins", "a mapping of plugin name to {path, sha256}")
		return
	}
	for i := 0; i+1 < len(v.items); i += 2 {
		k, val := &v.items[i], &v.items[i+1]
		if k.kind != vStr {
			d.add(k.pos, "", "plugins", k.s, ErrSchema, "plugins: want a plugin name, got %s", k.describe())
			continue
		}
		name := k.s
		field := "plugins." + name
		if _, dup := d.g.Plugins[name]; dup {
			d.add(k.pos, "", field, name, ErrSchema, "plugins: duplicate key %s", quoteShort(name))
			continue
		}
		if !validID(name) {
			d.add(k.pos, "", field, name, ErrBadValue, "plugins: bad plugin name %s (%s)", quoteShort(name), idHelp)
			continue
		}
		if IsBuiltin(name) {
			d.add(k.pos, "", field, name, ErrBadValue, "plugins: %q is a built-in plugin and needs no entry (built-ins: %s)", name, strings.Join(BuiltinPlugins, ", "))
			continue
		}
		ref := PluginRef{Pos: k.pos}
		hasPath := false
		d.fields(val, "", field, pluginFields, func(key string, fv *value) {
			switch key {
			case "path":
				if s, ok := d.str(fv, "", field+".path"); ok {
					if s == "" {
						d.add(fv.pos, "", field+".path", s, ErrBadValue, "%s.path: empty (want the plugin binary's path)", field)
						return
					}
					ref.Path, hasPath = s, true
				} else {
					hasPath = true
				}
			case "sha256":
				if s, ok := d.str(fv, "", field+".sha256"); ok {
					if !isSHA256(s) {
						d.add(fv.pos, "", field+".sha256", s, ErrBadValue, "%s.sha256: bad checksum %s (want 64 lowercase hex digits)", field, quoteShort(s))
						return
					}
					ref.SHA256 = s
				}
			case "max_parallel":
				ref.MaxParallel, _ = d.nonNegInt(fv, "", field+".max_parallel")
			case "start_timeout":
				ref.StartTimeout, _ = d.duration(fv, "", field+".start_timeout", true)
			}
		})
		if val.kind == vMap && !hasPath {
			d.add(val.pos, "", field+".path", "", ErrSchema, "%s: missing path (want the plugin binary's path)", field)
		}
		d.g.Plugins[name] = ref
	}
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var defaultsFields = []string{"timeout", "retries", "retry_delay", "rto", "approvals"}

func (d *decoder) decodeDefaults(v *value) {
	d.fields(v, "", "defaults", defaultsFields, func(key string, fv *value) {
		switch key {
		case "timeout":
			d.g.Defaults.Timeout, _ = d.duration(fv, "", "defaults.timeout", true)
		case "retries":
			d.g.Defaults.Retries, _ = d.nonNegInt(fv, "", "defaults.retries")
		case "retry_delay":
			d.g.Defaults.RetryDelay, _ = d.duration(fv, "", "defaults.retry_delay", false)
		case "rto":
			d.g.Defaults.RTO = map[Criticality]time.Duration{}
			d.byCriticality(fv, "defaults.rto", func(c Criticality, f string, cv *value) {
				if dur, ok := d.duration(cv, "", f, true); ok {
					d.g.Defaults.RTO[c] = dur
				}
			})
		case "approvals":
			d.g.Defaults.Approvals = map[Criticality]int{}
			d.byCriticality(fv, "defaults.approvals", func(c Criticality, f string, cv *value) {
				if k, ok := d.nonNegInt(cv, "", f); ok {
					if k < 1 || k > 20 {
						d.add(cv.pos, "", f, cv.s, ErrBadValue, "%s: %d is out of range (want 1 to 20 distinct approvers)", f, k)
						return
					}
					d.g.Defaults.Approvals[c] = k
				}
			})
		}
	})
}

// byCriticality walks a mapping keyed by criticality (vital, high, normal, low).
func (d *decoder) byCriticality(v *value, where string, fn func(c Criticality, field string, val *value)) {
	names := make([]string, len(Criticalities))
	for i, c := range Criticalities {
		names[i] = string(c)
	}
	d.fields(v, "", where, names, func(key string, cv *value) {
		fn(Criticality(key), where+"."+key, cv)
	})
}

// closestField suggests a field name: the nearest by edit distance, else
// one that starts with what was written ("depends" → "depends_on").
func closestField(s string, allowed []string) string {
	if c := closest(s, allowed); c != "" {
		return c
	}
	for _, a := range allowed {
		if len(s) >= 3 && strings.HasPrefix(a, s) {
			return a
		}
	}
	return ""
}
