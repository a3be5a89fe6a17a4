package graphs

import (
	"fmt"
	"sort"
	"strings"
)

// Ref is one placeholder in a node's `with` string values:
//   - ${env:NAME} (Env set): plain configuration from the environment (a
//     port, a host name), written as it is wherever the config goes;
//   - ${secret:NAME} (Secret set) or ${secret:file:PATH} (SecretFile set):
//     a secret from the environment or from a file (PATH relative to the
//     graph file's folder), resolved just before the call and never
//     persisted nor logged;
//   - ${nodes.ID.outputs.KEY} (Node and Key set): an output of an ancestor.
type Ref struct {
	Env        string
	Secret     string
	SecretFile string
	Node       string
	Key        string
}

// IsSecret reports whether r is a ${secret:…} placeholder.
func (r Ref) IsSecret() bool { return r.Secret != "" || r.SecretFile != "" }

// String writes the placeholder back as it reads in a graph file.
func (r Ref) String() string {
	switch {
	case r.Env != "":
		return "${env:" + r.Env + "}"
	case r.Secret != "":
		return "${secret:" + r.Secret + "}"
	case r.SecretFile != "":
		return "${secret:file:" + r.SecretFile + "}"
	}
	return "${nodes." + r.Node + ".outputs." + r.Key + "}"
}

// placeholderHelp says what placeholders are allowed, for messages.
const placeholderHelp = "want ${env:NAME}, ${secret:NAME}, ${secret:file:PATH} or ${nodes.ID.outputs.KEY}; write $${ for a literal ${"

// tmplPart is a literal run of text or a placeholder.
type tmplPart struct {
	lit string
	ref *Ref
}

// parseTemplate splits s into literal text and placeholders. `$${` is a
// literal `${`; any other `$` is literal too.
func parseTemplate(s string) ([]tmplPart, error) {
	if !strings.Contains(s, "${") {
		return []tmplPart{{lit: s}}, nil
	}
	var parts []tmplPart
	var lit strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			lit.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("placeholder %s is not closed with } (%s)", quoteShort(s[i:]), placeholderHelp)
			}
			inner := s[i+2 : i+end]
			ref, err := parseRef(inner)
			if err != nil {
				return nil, err
			}
			if lit.Len() > 0 {
				parts = append(parts, tmplPart{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, tmplPart{ref: &ref})
			i += end + 1
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	if lit.Len() > 0 || len(parts) == 0 {
		parts = append(parts, tmplPart{lit: lit.String()})
	}
	return parts, nil
}

func parseRef(inner string) (Ref, error) {
	bad := fmt.Errorf("bad placeholder %s", quoteShort("${"+inner+"}"))
	generic := fmt.Errorf("%w (%s)", bad, placeholderHelp)
	if name, ok := strings.CutPrefix(inner, "env:"); ok {
		if !validEnvName(name) {
			return Ref{}, fmt.Errorf("%w: environment variable name %s (want letters, digits and _, not starting with a digit)", bad, quoteShort(name))
		}
		return Ref{Env: name}, nil
	}
	if name, ok := strings.CutPrefix(inner, "secret:"); ok {
		if path, ok := strings.CutPrefix(name, "file:"); ok {
			if strings.TrimSpace(path) == "" {
				return Ref{}, fmt.Errorf("%w: empty file path (want ${secret:file:PATH}, PATH relative to the graph file's folder)", bad)
			}
			return Ref{SecretFile: path}, nil
		}
		if !validEnvName(name) {
			return Ref{}, fmt.Errorf("%w: environment variable name %s (want letters, digits and _, not starting with a digit)", bad, quoteShort(name))
		}
		return Ref{Secret: name}, nil
	}
	if rest, ok := strings.CutPrefix(inner, "nodes."); ok {
		k := strings.LastIndex(rest, ".outputs.")
		if k < 0 {
			return Ref{}, generic
		}
		id, key := rest[:k], rest[k+len(".outputs."):]
		if !validID(id) {
			return Ref{}, fmt.Errorf("%w: node id %s (%s)", bad, quoteShort(id), idHelp)
		}
		if !validKey(key) {
			return Ref{}, fmt.Errorf("%w: output key %s (want letters, digits, _ and -)", bad, quoteShort(key))
		}
		return Ref{Node: id, Key: key}, nil
	}
	return Ref{}, generic
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func validKey(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Refs returns every well-formed placeholder in the string values of with,
// each once, in a stable order (mapping keys sorted, list order kept).
// Malformed placeholders are skipped: Parse has refused them already.
func Refs(with map[string]any) []Ref {
	var out []Ref
	seen := map[Ref]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			parts, err := parseTemplate(x)
			if err != nil {
				return
			}
			for _, p := range parts {
				if p.ref != nil && !seen[*p.ref] {
					seen[*p.ref] = true
					out = append(out, *p.ref)
				}
			}
		case []any:
			for _, el := range x {
				walk(el)
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k])
			}
		}
	}
	walk(with)
	return out
}

// Expand returns a deep copy of with in which every placeholder of every
// string value is replaced by resolve's answer and `$${` by `${`. Keys are
// kept as written. The first error from resolve or from a malformed
// placeholder is returned with the path of the value.
func Expand(with map[string]any, resolve func(Ref) (string, error)) (map[string]any, error) {
	if with == nil {
		return nil, nil
	}
	out, err := expandValue(with, "with", resolve)
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

func expandValue(v any, path string, resolve func(Ref) (string, error)) (any, error) {
	switch x := v.(type) {
	case string:
		parts, err := parseTemplate(x)
		if err != nil {
			return nil, fmt.Errorf("expand %s: %w", path, err)
		}
		if len(parts) == 1 && parts[0].ref == nil {
			return parts[0].lit, nil
		}
		var b strings.Builder
		for _, p := range parts {
			if p.ref == nil {
				b.WriteString(p.lit)
				continue
			}
			s, err := resolve(*p.ref)
			if err != nil {
				return nil, fmt.Errorf("expand %s: %s: %w", path, p.ref, err)
			}
			b.WriteString(s)
		}
		return b.String(), nil
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			e, err := expandValue(el, fmt.Sprintf("%s[%d]", path, i), resolve)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, el := range x {
			e, err := expandValue(el, path+"."+k, resolve)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	}
	return v, nil
}
