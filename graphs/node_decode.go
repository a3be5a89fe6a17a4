package graphs

import (
	"fmt"
	"strconv"
	"strings"
)

var nodeFields = []string{"id", "kind", "title", "plugin", "depends_on", "between", "criticality", "estimate", "timeout", "retries", "with",
	"zone", "restore_points", "scan", "wipes", "evidence", "preserves",
	"owner", "contact", "runbook", "rto", "approvals"}

// decodeNode decodes the i-th entry of nodes.
func (d *decoder) decodeNode(i int, v *value) {
	n := &Node{Pos: v.pos, Criticality: CriticalityNormal}
	src := nodeSrc{}
	if v.kind != vMap {
		d.typeErr(v, "", fmt.Sprintf("nodes[%d]", i), "a node (a mapping with id, kind, plugin …)")
		return
	}
	// The id names the node in every message, wherever it is written.
	label := ""
	for j := 0; j+1 < len(v.items); j += 2 {
		if v.items[j].kind == vStr && v.items[j].s == "id" && v.items[j+1].kind == vStr {
			label = v.items[j+1].s
			break
		}
	}
	d.fields(v, label, "", nodeFields, func(key string, fv *value) {
		// An optional field left empty (YAML `depends_on:`) is absent.
		if fv.kind == vNull && key != "id" && key != "kind" && key != "plugin" {
			return
		}
		switch key {
		case "id":
			src.hasID = true
			src.id = fv.pos
			if s, ok := d.str(fv, label, "id"); ok {
				n.ID = s
				if !validID(s) {
					d.add(fv.pos, label, "id", s, ErrBadValue, "id: bad id %s (%s)", quoteShort(s), idHelp)
				}
			}
		case "kind":
			src.hasKind = true
			src.kind = fv.pos
			if s, ok := d.str(fv, label, "kind"); ok {
				n.Kind = Kind(s)
				n.KindPos = fv.pos
				if !validKind(n.Kind) {
					d.add(fv.pos, label, "kind", s, ErrBadValue, "kind: unknown kind %s (want %s)", quoteShort(s), joinKinds())
				}
			}
		case "title":
			n.Title, _ = d.str(fv, label, "title")
		case "plugin":
			src.hasPlugin = true
			src.plugin = fv.pos
			n.Plugin, _ = d.str(fv, label, "plugin")
			if n.Plugin == "" && fv.kind == vStr {
				d.add(fv.pos, label, "plugin", "", ErrUnknownPlugin, "plugin: empty (want a built-in: %s, or one declared under plugins)", strings.Join(BuiltinPlugins, ", "))
			}
		case "depends_on":
			n.DependsOn, src.deps = d.strList(fv, label, "depends_on")
		case "between":
			src.between = fv.pos
			before := len(d.probs)
			n.Between, src.ends = d.strList(fv, label, "between")
			src.badEnds = len(d.probs) > before // reported already
			if n.Between == nil {
				n.Between = []string{}
			}
		case "criticality":
			if s, ok := d.str(fv, label, "criticality"); ok {
				n.Criticality = Criticality(s)
				if !validCriticality(n.Criticality) {
					d.add(fv.pos, label, "criticality", s, ErrBadValue, "criticality: unknown criticality %s (want vital, high, normal, low)", quoteShort(s))
				}
			}
		case "estimate":
			n.Estimate, _ = d.duration(fv, label, "estimate", false)
		case "timeout":
			n.Timeout, _ = d.duration(fv, label, "timeout", true)
		case "retries":
			if r, ok := d.nonNegInt(fv, label, "retries"); ok {
				n.Retries = &r
			}
		case "owner":
			n.Owner, _ = d.str(fv, label, "owner")
		case "contact":
			n.Contact, _ = d.str(fv, label, "contact")
		case "runbook":
			n.Runbook, _ = d.str(fv, label, "runbook")
		case "rto":
			n.RTO, _ = d.duration(fv, label, "rto", true)
		case "approvals":
			src.approvals = fv.pos
			if k, ok := d.nonNegInt(fv, label, "approvals"); ok {
				if k < 1 || k > 20 {
					d.add(fv.pos, label, "approvals", fv.s, ErrBadValue, "approvals: %d is out of range (want 1 to 20 distinct approvers)", k)
				} else {
					n.Approvals = k
				}
			}
		case "with":
			if fv.kind != vMap {
				d.typeErr(fv, label, "with", "a mapping (the plugin's settings)")
				return
			}
			src.with = fv
			if m, ok := d.toGo(fv, label, "with").(map[string]any); ok {
				n.With = m
			}
		default:
			d.decodeCleanField(n, &src, label, key, fv)
		}
	})
	if !src.hasID {
		d.add(v.pos, "", "id", "", ErrSchema, "nodes[%d]: missing id (%s)", i, idHelp)
	}
	if !src.hasKind {
		d.add(v.pos, label, "kind", "", ErrBadValue, "missing kind (want %s)", joinKinds())
	}
	if !src.hasPlugin {
		d.add(v.pos, label, "plugin", "", ErrUnknownPlugin, "missing plugin (want a built-in: %s, or one declared under plugins)", strings.Join(BuiltinPlugins, ", "))
	}
	if n.Approvals > 0 && n.Plugin != "" && n.Plugin != "manual" {
		d.add(src.approvals, label, "approvals", strconv.Itoa(n.Approvals), ErrBadValue,
			"approvals: only a manual gate is approved (this node's plugin is %q)", n.Plugin)
	}
	d.g.Nodes = append(d.g.Nodes, n)
	d.src = append(d.src, src)
}

func validKind(k Kind) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

func validCriticality(c Criticality) bool {
	for _, x := range Criticalities {
		if x == c {
			return true
		}
	}
	return false
}

func joinKinds() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// toGo converts a `with` value to plain Go values: map[string]any, []any,
// string, int, float64, bool, nil. Mapping keys must be strings and unique.
func (d *decoder) toGo(v *value, node, field string) any {
	switch v.kind {
	case vNull:
		return nil
	case vBool:
		return v.s == "true"
	case vInt:
		if n, err := strconv.ParseInt(v.s, 10, 64); err == nil {
			return int(n)
		}
		f, _ := strconv.ParseFloat(v.s, 64)
		return f
	case vFloat:
		f, _ := strconv.ParseFloat(v.s, 64)
		return f
	case vStr:
		return v.s
	case vSeq:
		out := make([]any, len(v.items))
		for i := range v.items {
			out[i] = d.toGo(&v.items[i], node, fmt.Sprintf("%s[%d]", field, i))
		}
		return out
	case vMap:
		out := make(map[string]any, len(v.items)/2)
		for i := 0; i+1 < len(v.items); i += 2 {
			k := &v.items[i]
			if k.kind != vStr {
				d.add(k.pos, node, field, k.s, ErrSchema, "%s: want a string key, got %s", field, k.describe())
				continue
			}
			path := field + "." + k.s
			if _, dup := out[k.s]; dup {
				d.add(k.pos, node, path, k.s, ErrSchema, "%s: duplicate key %s", field, quoteShort(k.s))
				continue
			}
			out[k.s] = d.toGo(&v.items[i+1], node, path)
		}
		return out
	}
	return nil
}
