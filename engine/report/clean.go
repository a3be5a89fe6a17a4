package report

import (
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/view"
)

// Zone is a trust zone as the report shows it: its nodes' progress and its
// certification.
type Zone struct {
	ID       string `json:"id"`
	Title    string `json:"title,omitempty"`
	Total    int    `json:"total"`
	Restored int    `json:"restored"`
	// CertifiedBy, CertifiedAt and Comment are empty while the zone is not
	// certified.
	CertifiedBy string    `json:"certified_by,omitempty"`
	CertifiedAt time.Time `json:"certified_at,omitzero"`
	Comment     string    `json:"comment,omitempty"`
}

// Verdict is one scan of one restore point, from the journal.
type Verdict struct {
	NodeID   string    `json:"node"`
	Point    string    `json:"point"`
	Time     string    `json:"time"`    // the point's time, RFC 3339 UTC
	Verdict  string    `json:"verdict"` // clean, suspicious, encrypted, compromised; "skipped" for a point passed over
	Findings string    `json:"findings,omitempty"`
	At       time.Time `json:"at"`
	Seq      uint64    `json:"seq"`
}

// RPO is the restore point a node was restored from and the data lost.
type RPO struct {
	NodeID   string `json:"node"`
	Point    string `json:"point,omitempty"`
	Time     string `json:"time,omitempty"`
	Verdict  string `json:"verdict,omitempty"`
	DataLost string `json:"data_lost,omitempty"`
	State    string `json:"state"`
}

// addClean fills the report's zones, verdicts and RPO table from the
// run's view.
func (r *Report) addClean(m *view.Model) {
	if m.Graph != nil && m.Graph.Incident != nil {
		r.Incident = m.Graph.Incident.Detected
	}
	for _, z := range m.Zones {
		rz := Zone{ID: z.ID, Title: z.Title, Total: z.Total, Restored: z.Done}
		if c := z.Certified; c != nil {
			rz.CertifiedBy, rz.CertifiedAt, rz.Comment = c.By, c.At, c.Comment
		}
		r.Zones = append(r.Zones, rz)
	}
	for _, p := range m.RestorePoints {
		r.RPO = append(r.RPO, RPO{NodeID: p.Node, Point: p.Point, Time: p.Time, Verdict: p.Verdict,
			DataLost: p.DataLost, State: string(p.State)})
	}
	for _, e := range m.Journal {
		switch e.Type {
		case state.EntryScanned:
			r.Verdicts = append(r.Verdicts, Verdict{NodeID: e.NodeID, Point: e.Data["point"], Time: e.Data["time"],
				Verdict: e.Data["verdict"], Findings: e.Data["findings"], At: e.Time, Seq: e.Seq})
		case state.EntryPointSkipped:
			r.Verdicts = append(r.Verdicts, Verdict{NodeID: e.NodeID, Point: e.Data["point"], Time: e.Data["time"],
				Verdict: "skipped", Findings: e.Data["why"], At: e.Time, Seq: e.Seq})
		}
	}
}

// findingsShort is a verdict's findings on one line, for tables.
func findingsShort(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) >= 3 {
			rule := f[2]
			if len(rule) == 64 {
				rule = "sha256 " + rule[:12] + "…"
			}
			lines[i] = f[0] + " (" + f[1] + " " + rule + ")"
		}
	}
	if len(lines) > 4 {
		lines = append(lines[:4], "…")
	}
	return strings.Join(lines, "; ")
}

// markdownClean writes the zones, the RPO table and the verdicts.
func (r *Report) markdownClean(p func(string, ...any)) {
	if len(r.Zones) > 0 {
		p("## Trust zones\n\nMost trusted first: no node of a zone starts before every zone above it is certified.\n\n")
		p("| # | Zone | Restored | Certified | By | What was checked |\n|---:|---|---:|---|---|---|\n")
		for i, z := range r.Zones {
			cert, by := "**not certified**", "—"
			if z.CertifiedBy != "" {
				cert, by = "✓ "+r.mdClock(z.CertifiedAt), "**"+md(z.CertifiedBy)+"**"
			}
			p("| %d | %s | %d/%d | %s | %s | %s |\n", i+1, md(z.ID), z.Restored, z.Total, cert, by, md(z.Comment))
		}
		p("\n")
	}
	if len(r.RPO) > 0 {
		p("## Restore points and data lost (RPO achieved)\n\n")
		if !r.Incident.IsZero() {
			p("Data lost is counted back from the incident's detection, %s.\n\n", r.mdClock(r.Incident))
		}
		p("| Node | Restored from | Point taken | Verdict | Data lost | State |\n|---|---|---|---|---:|---|\n")
		for _, x := range r.RPO {
			p("| %s | %s | %s | %s | %s | %s |\n", md(x.NodeID), md(orDash(x.Point)), md(orDash(x.Time)), md(orDash(x.Verdict)), md(orDash(x.DataLost)), md(x.State))
		}
		p("\n")
	}
	if len(r.Verdicts) > 0 {
		p("## Restore point verdicts\n\n| When | Node | Point | Point taken | Verdict | Findings |\n|---|---|---|---|---|---|\n")
		for _, v := range r.Verdicts {
			p("| %s | %s | %s | %s | **%s** | %s |\n", r.mdClock(v.At), md(v.NodeID), md(v.Point), md(v.Time), md(v.Verdict), md(findingsShort(v.Findings)))
		}
		p("\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
