package graphs

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cleanSrc keeps where a node's clean-recovery fields were written.
type cleanSrc struct {
	zone             Position
	hasZone          bool
	scan             []Position
	wipes, preserves []Position
	evidence         Position
}

var zoneFields = []string{"id", "title"}

func (d *decoder) decodeZones(v *value) {
	if v.kind != vSeq {
		d.typeErr(v, "", "zones", "a list of zones, most trusted first ({id, title} each)")
		return
	}
	if len(v.items) == 0 {
		d.add(v.pos, "", "zones", "", ErrSchema, "zones: empty list (want at least one zone, or no zones field)")
	}
	seen := map[string]Position{}
	for i := range v.items {
		zv := &v.items[i]
		where := fmt.Sprintf("zones[%d]", i)
		z := Zone{Pos: zv.pos}
		hasID := false
		d.fields(zv, "", where, zoneFields, func(key string, fv *value) {
			switch key {
			case "id":
				hasID = true
				if s, ok := d.str(fv, "", where+".id"); ok {
					z.ID = s
					if !validID(s) {
						d.add(fv.pos, "", where+".id", s, ErrBadValue, "%s.id: bad zone id %s (%s)", where, quoteShort(s), idHelp)
					} else if first, dup := seen[s]; dup {
						d.add(fv.pos, "", where+".id", s, ErrDuplicateID, "%s.id: duplicate zone %s (first at line %d, column %d)", where, quoteShort(s), first.Line, first.Column)
					} else {
						seen[s] = fv.pos
					}
				}
			case "title":
				z.Title, _ = d.str(fv, "", where+".title")
			}
		})
		if zv.kind == vMap && !hasID {
			d.add(zv.pos, "", where+".id", "", ErrSchema, "%s: missing id", where)
		}
		d.g.Zones = append(d.g.Zones, z)
	}
}

var scannerFields = []string{"type", "hash_lists", "names", "threshold", "min_entropy", "rules", "database"}

// scannerTypeFields says which fields each scanner type takes.
var scannerTypeFields = map[string][]string{
	"ioc":     {"hash_lists", "names"},
	"entropy": {"threshold", "min_entropy"},
	"yara":    {"rules"},
	"clamav":  {"database"},
}

func (d *decoder) decodeScanners(v *value) {
	if v.kind != vMap {
		d.typeErr(v, "", "scanners", "a mapping of scanner name to {type, …}")
		return
	}
	for i := 0; i+1 < len(v.items); i += 2 {
		k, val := &v.items[i], &v.items[i+1]
		if k.kind != vStr {
			d.add(k.pos, "", "scanners", k.s, ErrSchema, "scanners: want a scanner name, got %s", k.describe())
			continue
		}
		field := "scanners." + k.s
		if !validID(k.s) {
			d.add(k.pos, "", field, k.s, ErrBadValue, "scanners: bad scanner name %s (%s)", quoteShort(k.s), idHelp)
			continue
		}
		if _, dup := d.g.Scanner(k.s); dup {
			d.add(k.pos, "", field, k.s, ErrSchema, "scanners: duplicate key %s", quoteShort(k.s))
			continue
		}
		sc := Scanner{Name: k.s, Pos: k.pos}
		keyPos := map[string]*value{}
		d.fields(val, "", field, scannerFields, func(key string, fv *value) {
			keyPos[key] = fv
			f := field + "." + key
			switch key {
			case "type":
				sc.Type, _ = d.str(fv, "", f)
			case "hash_lists":
				sc.HashLists = d.pathList(fv, f)
			case "names":
				sc.Names = d.pathList(fv, f)
				for j, p := range sc.Names {
					if !validPattern(p) {
						d.add(fv.items[j].pos, "", f, p, ErrBadValue, "%s: bad file-name pattern %s (want a shell pattern: *, ?, [a-z])", f, quoteShort(p))
					}
				}
			case "rules":
				sc.Rules = d.pathList(fv, f)
			case "threshold":
				sc.Threshold, _ = d.share(fv, f, 0, 1, "more than 0, at most 1: the share of files that may look encrypted")
			case "min_entropy":
				sc.MinEntropy, _ = d.share(fv, f, 0, 8, "more than 0, at most 8 bits per byte")
			case "database":
				if s, ok := d.str(fv, "", f); ok {
					if s == "" {
						d.add(fv.pos, "", f, s, ErrBadValue, "%s: empty (want a ClamAV signature file or folder)", f)
					}
					sc.Database = s
				}
			}
		})
		if val.kind == vMap {
			d.checkScanner(sc, val, field, keyPos)
		}
		d.g.Scanners = append(d.g.Scanners, sc)
	}
}

// checkScanner checks that a scanner has a known type, the fields its type
// needs and no field of another type.
func (d *decoder) checkScanner(sc Scanner, val *value, field string, keyPos map[string]*value) {
	tv, ok := keyPos["type"]
	if !ok {
		d.add(val.pos, "", field+".type", "", ErrSchema, "%s: missing type (want %s)", field, strings.Join(ScannerTypes, ", "))
		return
	}
	own, known := scannerTypeFields[sc.Type]
	if !known {
		if tv.kind == vStr {
			d.add(tv.pos, "", field+".type", sc.Type, ErrBadValue, "%s.type: unknown scanner type %s (want %s)", field, quoteShort(sc.Type), strings.Join(ScannerTypes, ", "))
		}
		return
	}
	for key, fv := range keyPos {
		if key == "type" || hasString(own, key) {
			continue
		}
		d.add(fv.pos, "", field+"."+key, "", ErrSchema, "%s: %s is not a field of a %s scanner (want %s)", field, key, sc.Type, strings.Join(own, ", "))
	}
	switch sc.Type {
	case "ioc":
		if len(sc.HashLists) == 0 && len(sc.Names) == 0 {
			d.add(val.pos, "", field, "", ErrSchema, "%s: an ioc scanner needs hash_lists, names or both", field)
		}
	case "yara":
		if len(sc.Rules) == 0 {
			d.add(val.pos, "", field+".rules", "", ErrSchema, "%s: missing rules (want a list of YARA rules files)", field)
		}
	case "clamav":
		if _, ok := keyPos["database"]; !ok {
			d.add(val.pos, "", field+".database", "", ErrSchema, "%s: missing database (want a ClamAV signature file or folder)", field)
		}
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pathList decodes a list of non-empty strings.
func (d *decoder) pathList(v *value, field string) []string {
	if v.kind != vSeq {
		d.typeErr(v, "", field, "a list of strings")
		return nil
	}
	out := make([]string, 0, len(v.items))
	for i := range v.items {
		el := &v.items[i]
		s, ok := d.str(el, "", field)
		if !ok {
			continue
		}
		if s == "" {
			d.add(el.pos, "", field, s, ErrBadValue, "%s: empty entry", field)
			continue
		}
		out = append(out, s)
	}
	return out
}

// share decodes a number in (lo, hi].
func (d *decoder) share(v *value, field string, lo, hi float64, want string) (float64, bool) {
	if v.kind != vInt && v.kind != vFloat {
		d.typeErr(v, "", field, "a number")
		return 0, false
	}
	f, err := strconv.ParseFloat(v.s, 64)
	if err != nil || f <= lo || f > hi {
		d.add(v.pos, "", field, v.s, ErrBadValue, "%s: %s is out of range (want %s)", field, v.s, want)
		return 0, false
	}
	return f, true
}

func validPattern(p string) bool {
	// path.Match reports a bad pattern only when it gets that far; check
	// the brackets ourselves.
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			if depth > 0 {
				return false
			}
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return depth == 0
}

var incidentFields = []string{"detected", "require_evidence"}

func (d *decoder) decodeIncident(v *value) {
	inc := &Incident{Pos: v.pos}
	hasDetected := false
	d.fields(v, "", "incident", incidentFields, func(key string, fv *value) {
		switch key {
		case "detected":
			hasDetected = true
			inc.Detected, _ = d.timestamp(fv, "", "incident.detected")
		case "require_evidence":
			inc.RequireEvidence, _ = d.boolean(fv, "", "incident.require_evidence")
		}
	})
	if v.kind == vMap && !hasDetected {
		d.add(v.pos, "", "incident.detected", "", ErrSchema, "incident: missing detected (want the time the attack was detected, RFC 3339: 2026-11-30T03:12:00+01:00)")
	}
	d.g.Incident = inc
}

const timeHelp = "want an RFC 3339 time with its offset: 2026-11-30T03:12:00+01:00 or 2026-11-30T02:12:00Z"

func (d *decoder) timestamp(v *value, node, field string) (time.Time, bool) {
	s, ok := d.str(v, node, field)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.add(v.pos, node, field, s, ErrBadValue, "%s: bad time %s (%s)", field, quoteShort(s), timeHelp)
		return time.Time{}, false
	}
	return t, true
}

func (d *decoder) boolean(v *value, node, field string) (bool, bool) {
	if v.kind != vBool {
		d.typeErr(v, node, field, "true or false")
		return false, false
	}
	return v.s == "true", true
}

// decodeCleanField decodes a node's clean-recovery fields.
func (d *decoder) decodeCleanField(n *Node, src *nodeSrc, label, key string, fv *value) {
	switch key {
	case "zone":
		src.clean.hasZone, src.clean.zone = true, fv.pos
		n.Zone, _ = d.str(fv, label, "zone")
	case "restore_points":
		n.RestorePoints = d.restorePoints(fv, label)
	case "scan":
		n.Scan, src.clean.scan = d.idList(fv, label, "scan", "a list of scanner names (declared under scanners)")
	case "wipes":
		n.Wipes, src.clean.wipes = d.idList(fv, label, "wipes", "a list of machine ids")
	case "preserves":
		n.Preserves, src.clean.preserves = d.idList(fv, label, "preserves", "a list of machine ids")
	case "evidence":
		src.clean.evidence = fv.pos
		n.Evidence, _ = d.boolean(fv, label, "evidence")
	}
}

// idList decodes a list of ids, each once.
func (d *decoder) idList(v *value, node, field, want string) ([]string, []Position) {
	if v.kind != vSeq {
		d.typeErr(v, node, field, want)
		return nil, nil
	}
	var out []string
	var pos []Position
	for i := range v.items {
		el := &v.items[i]
		s, ok := d.str(el, node, field)
		if !ok {
			continue
		}
		if !validID(s) {
			d.add(el.pos, node, field, s, ErrBadValue, "%s: bad id %s (%s)", field, quoteShort(s), idHelp)
			continue
		}
		if hasString(out, s) {
			d.add(el.pos, node, field, s, ErrSchema, "%s: %q is listed twice", field, s)
			continue
		}
		out = append(out, s)
		pos = append(pos, el.pos)
	}
	return out, pos
}

var restorePointFields = []string{"id", "time", "path"}

// pointRoots decodes restore_points.roots: a non-empty list of folders.
func (d *decoder) pointRoots(v *value, node string) []string {
	if v.kind != vSeq || len(v.items) == 0 {
		d.typeErr(v, node, "restore_points.roots", "a non-empty list of folders")
		return nil
	}
	var out []string
	for i := range v.items {
		el := &v.items[i]
		where := fmt.Sprintf("restore_points.roots[%d]", i)
		s, ok := d.str(el, node, where)
		switch {
		case !ok:
		case strings.TrimSpace(s) == "":
			d.add(el.pos, node, where, s, ErrBadValue, "%s: empty (want a folder)", where)
		case filepath.Clean(s) == "/":
			d.add(el.pos, node, where, s, ErrBadValue, "%s: %s is the whole file system (want the folder that holds the node's backups)", where, quoteShort(s))
		default:
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) restorePoints(v *value, node string) *RestorePoints {
	rp := &RestorePoints{Pos: v.pos}
	switch v.kind {
	case vMap:
		var from, roots *value
		d.fields(v, node, "restore_points", []string{"from", "roots"}, func(key string, fv *value) {
			switch key {
			case "from":
				from = fv
				if s, ok := d.str(fv, node, "restore_points.from"); ok && s != "plugin" {
					d.add(fv.pos, node, "restore_points.from", s, ErrBadValue, "restore_points.from: unknown source %s (want plugin, or a list of {id, time, path})", quoteShort(s))
				} else if ok {
					rp.FromPlugin = true
				}
			case "roots":
				roots = fv
				rp.Roots = d.pointRoots(fv, node)
			}
		})
		switch {
		case from == nil:
			d.add(v.pos, node, "restore_points.from", "", ErrSchema, "restore_points: missing from (want from: plugin, or a list of {id, time, path})")
		case roots == nil && rp.FromPlugin:
			d.add(v.pos, node, "restore_points.roots", "", ErrSchema, "restore_points: missing roots (want roots: [folder, …], the folders the plugin's points must lie under)")
		}
		return rp
	case vSeq:
	default:
		d.typeErr(v, node, "restore_points", "a list of {id, time, path}, or {from: plugin}")
		return nil
	}
	if len(v.items) == 0 {
		d.add(v.pos, node, "restore_points", "", ErrSchema, "restore_points: empty list (want at least one {id, time, path})")
	}
	seen := map[string]bool{}
	for i := range v.items {
		pv := &v.items[i]
		where := fmt.Sprintf("restore_points[%d]", i)
		p := RestorePoint{Pos: pv.pos}
		var has [3]bool
		d.fields(pv, node, where, restorePointFields, func(key string, fv *value) {
			switch key {
			case "id":
				has[0] = true
				if s, ok := d.str(fv, node, where+".id"); ok {
					p.ID = s
					switch {
					case !validID(s):
						d.add(fv.pos, node, where+".id", s, ErrBadValue, "%s.id: bad id %s (%s)", where, quoteShort(s), idHelp)
					case seen[s]:
						d.add(fv.pos, node, where+".id", s, ErrDuplicateID, "%s.id: duplicate restore point %s", where, quoteShort(s))
					}
					seen[s] = true
				}
			case "time":
				has[1] = true
				p.Time, _ = d.timestamp(fv, node, where+".time")
			case "path":
				has[2] = true
				if s, ok := d.str(fv, node, where+".path"); ok {
					if s == "" {
						d.add(fv.pos, node, where+".path", s, ErrBadValue, "%s.path: empty (want the point's folder)", where)
					}
					p.Path = s
				}
			}
		})
		if pv.kind == vMap {
			for j, name := range restorePointFields {
				if !has[j] {
					d.add(pv.pos, node, where+"."+name, "", ErrSchema, "%s: missing %s (want id, time and path)", where, name)
				}
			}
		}
		rp.Points = append(rp.Points, p)
	}
	return rp
}
