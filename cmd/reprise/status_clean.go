package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/reprise-si/reprise/engine/view"
)

// printZones prints the trust zones: progress, certification, and what to
// do next.
func printZones(w io.Writer, m *view.Model) {
	if len(m.Zones) == 0 {
		return
	}
	fmt.Fprintln(w, "zones (most trusted first):")
	for _, z := range m.Zones {
		var st string
		switch {
		case z.Certified != nil:
			st = fmt.Sprintf("certified by %s at %s: %s", z.Certified.By, z.Certified.At.Local().Format(time.DateTime), firstLineOf(z.Certified.Comment))
		case !z.Open:
			st = "held: a more trusted zone is not certified"
		case z.Done == z.Total:
			st = fmt.Sprintf("ready to certify: reprise certify %s %s --by NAME --comment TEXT", m.Run.ID, z.ID)
		default:
			st = "in progress"
		}
		fmt.Fprintf(w, "  %-16s %d/%d done  %s\n", z.ID, z.Done, z.Total, st)
	}
}

// printRestorePoints prints the restore point of each node that has them,
// and the data lost (RPO achieved).
func printRestorePoints(w io.Writer, m *view.Model) {
	if len(m.RestorePoints) == 0 {
		return
	}
	fmt.Fprintln(w, "restore points (RPO achieved: data lost before the incident):")
	for _, p := range m.RestorePoints {
		switch {
		case p.Point != "":
			lost := p.DataLost
			if lost == "" {
				lost = "-"
			}
			fmt.Fprintf(w, "  %-28s %s (%s, %s)  data lost %s\n", p.Node, p.Point, p.Time, p.Verdict, lost)
		case p.Suspicious != "":
			fmt.Fprintf(w, "  %-28s waits on suspicious point %s: reprise restore-point %s %s --use %s | --exclude %s --by NAME --reason TEXT\n",
				p.Node, p.Suspicious, m.Run.ID, p.Node, p.Suspicious, p.Suspicious)
		default:
			fmt.Fprintf(w, "  %-28s %s, no point chosen yet\n", p.Node, p.State)
		}
	}
}

// suspiciousPoint returns the suspicious point node id waits on, or "".
func suspiciousPoint(m *view.Model, id string) string {
	for _, p := range m.RestorePoints {
		if p.Node == id {
			return p.Suspicious
		}
	}
	return ""
}

// firstLineOf is the first line of s, with "…" when more follow.
func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
