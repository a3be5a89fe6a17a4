package graphs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const zonesHead = `version: 1
zones:
  - {id: core, title: Trusted core}
  - {id: clinical, title: Care}
  - {id: outside}
`

// TestCleanProblems: every clean-recovery field's problems, each with
// FILE:LINE:COL, the field and the value.
func TestCleanProblems(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
		sentinel  error
	}{
		{"missing zone", zonesHead + "nodes:\n  - {id: ad, kind: infrastructure, plugin: noop}\n",
			[]string{`g.yaml:7:5: node "ad": missing zone (the graph declares zones: want one of core, clinical, outside)`}, ErrZone},
		{"unknown zone", zonesHead + "nodes:\n  - {id: ad, kind: infrastructure, plugin: noop, zone: cor}\n",
			[]string{`g.yaml:7:56: node "ad": zone: unknown zone "cor" (did you mean "core"? want one of core, clinical, outside)`}, ErrZone},
		{"zone without zones", "version: 1\nnodes:\n  - {id: ad, kind: infrastructure, plugin: noop, zone: core}\n",
			[]string{`g.yaml:3:56: node "ad": zone: the graph declares no zones`}, ErrZone},
		{"duplicate zone", "version: 1\nzones:\n  - {id: core}\n  - {id: core}\nnodes:\n  - {id: ad, kind: data, plugin: noop, zone: core}\n",
			[]string{`g.yaml:4:10: zones[1].id: duplicate zone "core" (first at line 3, column 10)`}, ErrDuplicateID},
		{"zone without id", "version: 1\nzones:\n  - {title: x}\nnodes:\n  - {id: ad, kind: data, plugin: noop}\n",
			[]string{`g.yaml:3:5: zones[0]: missing id`, `g.yaml:5:5: node "ad": missing zone (the graph declares zones: want one of )`}, ErrSchema},
		{"core depends on clinical", zonesHead + `nodes:
  - {id: dpi, kind: application, plugin: noop, zone: clinical}
  - {id: ad, kind: infrastructure, plugin: noop, zone: core, depends_on: [dpi]}
`, []string{`g.yaml:8:75: node "ad": depends_on: "dpi" is in zone "clinical", less trusted than this node's zone "core" (a node never waits for a less trusted zone)`}, ErrZone},
		{"cross-zone interface in the more trusted zone", zonesHead + `nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core}
  - {id: ext, kind: application, plugin: noop, zone: outside}
  - {id: ldap-out, kind: interface, plugin: noop, zone: core, between: [ad, ext]}
`, []string{`g.yaml:9:77: node "ldap-out": between: "ext" is in zone "outside", less trusted than this node's zone "core"`}, ErrZone},
		{"cross-zone interface in a third zone", zonesHead + `nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core}
  - {id: dpi, kind: application, plugin: noop, zone: clinical}
  - {id: ldap, kind: interface, plugin: noop, zone: outside, between: [ad, dpi]}
`, []string{`g.yaml:9:53: node "ldap": zone: interface between zones "core" and "clinical" belongs to the less trusted one, "clinical" (got "outside")`}, ErrZone},
		{"unknown scanner", "version: 1\nscanners:\n  iocs: {type: ioc, names: ['*.lock']}\nnodes:\n  - {id: a, kind: data, plugin: noop, scan: [ioc], restore_points: [{id: p1, time: '2026-11-30T01:00:00Z', path: p1}]}\n",
			[]string{`g.yaml:5:46: node "a": scan: unknown scanner "ioc" (want one of iocs)`}, ErrUnknownScanner},
		{"scan without points", "version: 1\nscanners:\n  iocs: {type: ioc, names: ['*.lock']}\nnodes:\n  - {id: a, kind: data, plugin: noop, scan: [iocs]}\n",
			[]string{`g.yaml:5:46: node "a": scan: the node has no restore_points to scan`}, ErrSchema},
		{"points without scan", "version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, restore_points: [{id: p1, time: '2026-11-30T01:00:00Z', path: p1}]}\n",
			[]string{`g.yaml:3:55: node "a": restore_points: no scan names the scanners to run on them`}, ErrSchema},
		{"points from plugin without roots", "version: 1\nscanners:\n  e: {type: entropy}\nnodes:\n  - {id: a, kind: data, plugin: noop, scan: [e], restore_points: {from: plugin}}\n",
			[]string{`g.yaml:5:66: node "a": restore_points: missing roots (want roots: [folder, …], the folders the plugin's points must lie under)`}, ErrSchema},
		{"points from plugin with bad roots", "version: 1\nscanners:\n  e: {type: entropy}\nnodes:\n  - {id: a, kind: data, plugin: noop, scan: [e], restore_points: {from: plugin, roots: ['', /, 3]}}\n",
			[]string{
				`g.yaml:5:89: node "a": restore_points.roots[0]: empty (want a folder)`,
				`g.yaml:5:93: node "a": restore_points.roots[1]: "/" is the whole file system`,
				`g.yaml:5:96: node "a": restore_points.roots[2]: want a string`,
			}, ErrBadValue},
		{"points from plugin with roots not a list", "version: 1\nscanners:\n  e: {type: entropy}\nnodes:\n  - {id: a, kind: data, plugin: noop, scan: [e], restore_points: {from: plugin, roots: /srv}}\n",
			[]string{`g.yaml:5:88: node "a": restore_points.roots: want a non-empty list of folders`}, ErrSchema},
		{"bad point", "version: 1\nscanners:\n  e: {type: entropy}\nnodes:\n  - id: a\n    kind: data\n    plugin: noop\n    scan: [e]\n    restore_points:\n      - {id: p1, time: yesterday, path: ''}\n      - {id: p1, time: '2026-11-30T01:00:00Z'}\n",
			[]string{
				`g.yaml:10:24: node "a": restore_points[0].time: bad time "yesterday" (want an RFC 3339 time with its offset`,
				`g.yaml:10:41: node "a": restore_points[0].path: empty (want the point's folder)`,
				`g.yaml:11:9: node "a": restore_points[1]: missing path (want id, time and path)`,
				`g.yaml:11:14: node "a": restore_points[1].id: duplicate restore point "p1"`,
			}, ErrBadValue},
		{"points from elsewhere", "version: 1\nscanners:\n  e: {type: entropy}\nnodes:\n  - {id: a, kind: data, plugin: noop, scan: [e], restore_points: {from: tape}}\n",
			[]string{`g.yaml:5:73: node "a": restore_points.from: unknown source "tape" (want plugin, or a list of {id, time, path})`}, ErrBadValue},
		{"scanner problems", `version: 1
scanners:
  a: {type: antivirus}
  b: {type: entropy, threshold: 1.5, rules: [x.yar]}
  c: {type: yara}
  d: {type: ioc}
  e: {names: ['[a']}
nodes:
  - {id: n, kind: data, plugin: noop}
`, []string{
			`g.yaml:3:13: scanners.a.type: unknown scanner type "antivirus" (want ioc, entropy, yara, clamav)`,
			`g.yaml:4:33: scanners.b.threshold: 1.5 is out of range (want more than 0, at most 1`,
			`g.yaml:4:45: scanners.b: rules is not a field of a entropy scanner (want threshold, min_entropy)`,
			`g.yaml:5:6: scanners.c: missing rules (want a list of YARA rules files)`,
			`g.yaml:6:6: scanners.d: an ioc scanner needs hash_lists, names or both`,
			`g.yaml:7:6: scanners.e: missing type (want ioc, entropy, yara, clamav)`,
			`g.yaml:7:15: scanners.e.names: bad file-name pattern "[a"`,
		}, ErrBadValue},
		{"incident", "version: 1\nincident: {require_evidence: yes}\nnodes:\n  - {id: n, kind: data, plugin: noop}\n",
			[]string{
				`g.yaml:2:11: incident: missing detected`,
				`g.yaml:2:30: incident.require_evidence: want true or false, got string "yes"`,
			}, ErrSchema},
		{"incident bad time", "version: 1\nincident: {detected: '2026-11-30 03:12'}\nnodes:\n  - {id: n, kind: data, plugin: noop}\n",
			[]string{`g.yaml:2:22: incident.detected: bad time "2026-11-30 03:12"`}, ErrBadValue},
		{"wipe without evidence", `version: 1
incident: {detected: '2026-11-30T03:12:00+01:00', require_evidence: true}
nodes:
  - {id: img, kind: infrastructure, plugin: noop, evidence: true, preserves: [dc01]}
  - {id: reimage, kind: infrastructure, plugin: noop, wipes: [dc01, fs01]}
`, []string{`g.yaml:5:69: node "reimage": wipes: nothing preserves evidence of "fs01" before it is wiped (incident.require_evidence is true: add a node with evidence: true and preserves: [fs01])`}, ErrEvidence},
		{"evidence fields", `version: 1
nodes:
  - {id: img, kind: infrastructure, plugin: noop, evidence: true}
  - {id: x, kind: infrastructure, plugin: noop, preserves: [dc01]}
`, []string{
			`g.yaml:3:61: node "img": evidence: an evidence node needs preserves`,
			`g.yaml:4:61: node "x": preserves: only an evidence node preserves machines (want evidence: true)`,
		}, ErrSchema},
		{"evidence after the wipe is a cycle", `version: 1
nodes:
  - {id: img, kind: infrastructure, plugin: noop, evidence: true, preserves: [dc01], depends_on: [reimage]}
  - {id: reimage, kind: infrastructure, plugin: noop, wipes: [dc01]}
`, []string{`g.yaml:3:99: node "img": dependency cycle: img -> reimage -> img`}, ErrCycle},
		{"evidence in a less trusted zone", zonesHead + `nodes:
  - {id: img, kind: infrastructure, plugin: noop, zone: clinical, evidence: true, preserves: [dc01]}
  - {id: reimage, kind: infrastructure, plugin: noop, zone: core, wipes: [dc01]}
`, []string{`g.yaml:8:75: node "reimage": wipes: evidence node "img" is in zone "clinical", less trusted than this node's zone "core"`}, ErrZone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("g.yaml", []byte(tc.src))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ve.Problems), len(tc.want), err)
			}
			for i, p := range ve.Problems {
				if !strings.HasPrefix(p.Error(), tc.want[i]) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…", i, p.Error(), tc.want[i])
				}
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(err, %v) = false", tc.sentinel)
			}
		})
	}
}

func TestCleanParse(t *testing.T) {
	src := zonesHead + `incident: {detected: '2026-11-30T03:12:00+01:00', require_evidence: true}
scanners:
  iocs: {type: ioc, hash_lists: [iocs/cert.txt], names: ['*DECRYPT*']}
  entropy: {type: entropy, threshold: 0.2, min_entropy: 7.2}
  webshells: {type: yara, rules: [rules/web.yar]}
  av: {type: clamav, database: sigs/local.hdb}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core, wipes: [dc01]}
  - {id: ad-image, kind: infrastructure, plugin: noop, zone: core, evidence: true, preserves: [dc01]}
  - id: dpi-data
    kind: data
    plugin: noop
    zone: clinical
    depends_on: [ad]
    scan: [iocs, entropy, webshells]
    restore_points:
      - {id: d1, time: '2026-11-29T02:00:00+01:00', path: backups/dpi/d1}
      - {id: d0, time: '2026-11-30T02:00:00+01:00', path: backups/dpi/d0}
  - {id: ext, kind: application, plugin: noop, zone: outside, scan: [av], restore_points: [{id: e1, time: '2026-11-29T00:00:00Z', path: ext/e1}]}
  - {id: dpi-to-ext, kind: interface, plugin: noop, zone: outside, between: [dpi-data, ext]}
`
	g, err := Parse("g.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Zones) != 3 || g.Zones[0] != (Zone{ID: "core", Title: "Trusted core", Pos: Position{3, 5}}) || g.ZoneRank("outside") != 2 || g.ZoneRank("x") != -1 {
		t.Errorf("zones %+v", g.Zones)
	}
	det := time.Date(2026, 11, 30, 2, 12, 0, 0, time.UTC)
	if g.Incident == nil || !g.Incident.Detected.Equal(det) || !g.Incident.RequireEvidence {
		t.Errorf("incident %+v", g.Incident)
	}
	if len(g.Scanners) != 4 || g.Scanners[1].Threshold != 0.2 || g.Scanners[1].MinEntropy != 7.2 ||
		!reflect.DeepEqual(g.Scanners[0].HashLists, []string{"iocs/cert.txt"}) || g.Scanners[3].Database != "sigs/local.hdb" {
		t.Errorf("scanners %+v", g.Scanners)
	}
	ad, _ := g.Node("ad")
	if !reflect.DeepEqual(ad.After, []string{"ad-image"}) || !reflect.DeepEqual(ad.Deps(), []string{"ad-image"}) {
		t.Errorf("ad waits for %v (deps %v), want the evidence node", ad.After, ad.Deps())
	}
	a := Analyze(g)
	adI, _ := g.Index("ad")
	imgI, _ := g.Index("ad-image")
	if idx(a.Order, imgI) > idx(a.Order, adI) || a.Level[adI] != 1 {
		t.Errorf("order %v levels %v: evidence after the wipe", a.Order, a.Level)
	}
	dpi, _ := g.Node("dpi-data")
	rp := dpi.RestorePoints
	if rp == nil || rp.FromPlugin || len(rp.Points) != 2 || rp.Points[1].ID != "d0" || rp.Points[1].Path != "backups/dpi/d0" ||
		!rp.Points[0].Time.Equal(time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("restore points %+v", rp)
	}
	ext, _ := g.Node("ext")
	if ext.RestorePoints == nil || ext.RestorePoints.FromPlugin || !reflect.DeepEqual(ext.Scan, []string{"av"}) {
		t.Errorf("ext %+v", ext)
	}
	want := []Reconnection{{Interface: "dpi-to-ext", From: "clinical", To: "outside", Ends: [2]string{"dpi-data", "ext"}}}
	if got := g.Reconnections(); !reflect.DeepEqual(got, want) {
		t.Errorf("reconnections %+v, want %+v", got, want)
	}
}

func idx(list []int, s int) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// TestPlanAndDOTZones: plan shows the zones as stages with their waves and
// the reconnections; DOT draws each zone as a cluster.
func TestPlanAndDOTZones(t *testing.T) {
	g, err := Parse("z.yaml", []byte(zonesHead+`nodes:
  - {id: ad, kind: infrastructure, plugin: noop, zone: core, wipes: [dc01]}
  - {id: dc01-image, kind: infrastructure, plugin: noop, zone: core, evidence: true, preserves: [dc01]}
  - {id: dpi, kind: application, plugin: noop, zone: clinical, depends_on: [ad]}
  - {id: lab, kind: application, plugin: noop, zone: clinical}
  - {id: mssante, kind: application, plugin: noop, zone: outside}
  - {id: dpi-to-mssante, kind: interface, plugin: noop, zone: outside, between: [dpi, mssante]}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(g, nil, 4)
	wantZones := []PlanZone{
		{ID: "core", Title: "Trusted core", Waves: [][]string{{"dc01-image"}, {"ad"}}},
		{ID: "clinical", Title: "Care", Waves: [][]string{{"lab"}, {"dpi"}}},
		{ID: "outside", Waves: [][]string{{"mssante"}, {"dpi-to-mssante"}}},
	}
	if !reflect.DeepEqual(p.Zones, wantZones) {
		t.Errorf("zones %+v\nwant %+v", p.Zones, wantZones)
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Zone 1: core — Trusted core — 2 nodes, starts at once\n  Wave 1.1 — 1 node\n",
		"Zone 2: clinical — Care — 2 nodes, starts once zone core and those before it are certified\n",
		"  Reconnection: dpi-to-mssante links dpi (zone clinical) and mssante (zone outside)\n  Certify: reprise certify RUN outside",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := RenderDOT(&b, g, RenderOptions{Certified: map[string]string{"core": "certified by M. Martin"}}); err != nil {
		t.Fatal(err)
	}
	dot := b.String()
	for _, want := range []string{
		"subgraph \"cluster_0_core\" {\n    label=\"core — Trusted core\\ncertified by M. Martin\";",
		"subgraph \"cluster_2_outside\" {\n    label=\"outside\";",
		"\"dc01-image\" -> \"ad\";",
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("dot lacks %q:\n%s", want, dot)
		}
	}
	if i, j := strings.Index(dot, "cluster_1_clinical"), strings.Index(dot, `"dpi" [label`); i < 0 || j < i || j > strings.Index(dot, "cluster_2_outside") {
		t.Errorf("dpi is not drawn inside the clinical cluster:\n%s", dot)
	}
}

func TestPointsFromPluginDecode(t *testing.T) {
	src := "version: 1\nplugins:\n  vault: {path: ./vault}\nscanners:\n  e: {type: entropy}\nnodes:\n  - {id: a, kind: data, plugin: vault, scan: [e], restore_points: {from: plugin, roots: [/srv/vault/a, staging]}}\n"
	g, err := Parse("g.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := g.Node("a")
	rp := n.RestorePoints
	if rp == nil || !rp.FromPlugin || len(rp.Points) != 0 || !reflect.DeepEqual(rp.Roots, []string{"/srv/vault/a", "staging"}) {
		t.Errorf("restore points %+v, want from plugin with roots [/srv/vault/a staging]", rp)
	}
}
