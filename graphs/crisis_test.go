package graphs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const crisisGraph = `version: 1
name: crisis
incident: {detected: "2026-03-01T06:40:00+01:00"}
defaults:
  rto: {vital: 72h, high: 7d}
  approvals: {vital: 2}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, owner: "IT lead", contact: "+33 1 23 45 67 89", runbook: "https://wiki/ad", rto: 24h}
  - {id: go, kind: infrastructure, plugin: manual, depends_on: [ad]}
  - {id: go3, kind: infrastructure, plugin: manual, depends_on: [ad], approvals: 3}
  - {id: dpi, kind: application, plugin: noop, criticality: vital, depends_on: [go, go3]}
  - {id: mail, kind: application, plugin: noop, criticality: low}
`

// TestCrisisFields: owner, contact, runbook, rto, approvals, incident and
// the defaults by criticality are read; effective values follow the
// effective criticality.
func TestCrisisFields(t *testing.T) {
	g := mustParse(t, "g.yaml", crisisGraph)
	a := Analyze(g)
	ad, _ := g.Node("ad")
	if ad.Owner != "IT lead" || ad.Contact != "+33 1 23 45 67 89" || ad.Runbook != "https://wiki/ad" || ad.RTO != 24*time.Hour {
		t.Fatalf("ad: %+v", ad)
	}
	want := time.Date(2026, 3, 1, 5, 40, 0, 0, time.UTC)
	if g.Incident == nil || !g.Incident.Detected.Equal(want) {
		t.Fatalf("incident %v, want %v", g.Incident.Detected, want)
	}
	eff := func(id string) Criticality { i, _ := g.Index(id); return a.Effective[i] }
	gate, _ := g.Node("go")
	gate3, _ := g.Node("go3")
	mail, _ := g.Node("mail")
	if k := g.NodeApprovals(gate, eff("go")); k != 2 {
		t.Errorf("vital gate approvals %d, want the default 2", k)
	}
	if k := g.NodeApprovals(gate3, eff("go3")); k != 3 {
		t.Errorf("gate's own approvals %d, want 3", k)
	}
	if k := g.NodeApprovals(mail, eff("mail")); k != 1 {
		t.Errorf("low node approvals %d, want 1", k)
	}
	if r := g.NodeRTO(ad, eff("ad")); r != 24*time.Hour {
		t.Errorf("own rto %v", r)
	}
	if r := g.NodeRTO(gate, eff("go")); r != 72*time.Hour {
		t.Errorf("vital default rto %v", r)
	}
	if r := g.NodeRTO(mail, eff("mail")); r != 0 {
		t.Errorf("low rto %v, want none", r)
	}
}

// TestCrisisFieldsAreMetadata: editing owner, contact, runbook, rto or
// approvals changes no node for DiffGraphs (so resume resets nothing).
func TestCrisisFieldsAreMetadata(t *testing.T) {
	old := mustParse(t, "g.yaml", crisisGraph)
	edited := strings.NewReplacer(`owner: "IT lead"`, `owner: "Deputy"`, `rto: 24h`, `rto: 12h`,
		`https://wiki/ad`, `/srv/runbooks/ad.md`, `approvals: 3`, `approvals: 2`).Replace(crisisGraph)
	edited = strings.Replace(edited, "plugin: noop, criticality: low}", "plugin: noop, criticality: low, owner: x, contact: y}", 1)
	g := mustParse(t, "g.yaml", edited)
	if d := DiffGraphs(old, g); len(d.Added)+len(d.Removed)+len(d.Changed) != 0 {
		t.Fatalf("metadata edit gives %+v, want no change", d)
	}
}

func TestCrisisFieldProblems(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, approvals: 2}\n",
			`g.yaml:3:50: node "a": approvals: only a manual gate is approved (this node's plugin is "noop")`},
		{"version: 1\nnodes:\n  - {id: a, kind: data, plugin: manual, approvals: 0}\n",
			`g.yaml:3:52: node "a": approvals: 0 is out of range (want 1 to 20 distinct approvers)`},
		{"version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop, rto: soon}\n",
			`g.yaml:3:44: node "a": rto: bad duration "soon"`},
		{"version: 1\ndefaults: {rto: {vitall: 3d}}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`g.yaml:2:18: unknown field "vitall" (did you mean "vital"?`},
		{"version: 1\ndefaults: {approvals: {vital: 30}}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`g.yaml:2:31: defaults.approvals.vital: 30 is out of range`},
		{"version: 1\nincident: {detected: yesterday}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`g.yaml:2:22: incident.detected:`},
		{"version: 1\nnotify:\n  - {webhook: 'https://h/x', events: [gate-opened]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`g.yaml:3:39: notify[0].events: unknown event "gate-opened" (want gate-waiting, node-failed, deadline-at-risk, deadline-late, run-finished, run-interrupted, zone-certified)`},
		{"version: 1\nnotify:\n  - {webhook: 'https://h/x', command: [sms], events: [node-failed]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`g.yaml:3:5: notify[0]: want exactly one of webhook or command`},
		{"version: 1\nnotify:\n  - {webhook: 'https://h/x', secret: hunter2, events: [node-failed]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`notify[0].secret: want a ${secret:NAME}, ${secret:file:PATH} or ${env:NAME} placeholder, never the key itself`},
		{"version: 1\nnotify:\n  - {webhook: 'ftp://h/x', events: [node-failed]}\nnodes:\n  - {id: a, kind: data, plugin: noop}\n",
			`g.yaml:3:15: notify[0].webhook: bad URL "ftp://h/x"`},
	} {
		_, err := Parse("g.yaml", []byte(tc.src))
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the key is in the message: %v", err)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\ngot  %v\nwant %s", tc.src, err, tc.want)
		}
		var pe *Problem
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%T holds no *Problem", err)
		}
	}
}
