package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// Markdown writes the report as Markdown tables, for an e-mail or a ticket:
// headline, counts, breakdowns, failures, decisions, the journal's
// verification and every node. A drill's report starts with a DRILL line
// and its clean-up record, or a warning that it is missing. Every value is
// escaped for table cells.
func (r *Report) Markdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	if r.Journal.Broken != "" {
		p("> **⚠ %s**\n\n", md(r.Journal.Broken))
	}
	p("# %s: %s\n\n", r.name(), md(r.Run.Graph))
	if r.Run.Drill {
		p("**DRILL** — %s.\n\n", drillWhat)
		if c := r.Run.Cleanup; c != nil {
			p("Clean-up recorded by **%s** on %s: %s\n\n", md(c.By), r.mdClock(c.At), md(c.Note))
		} else {
			p("**Clean-up not recorded yet.** Once what the drill set up is cleaned up, record it: `%s`\n\n",
				mdCode(cleanupCommand(r.Run.ID)))
		}
	}
	p("**%s**\n\n", md(r.Summary.Headline))
	p("Run `%s` · status **%s**", mdCode(r.Run.ID), md(r.Run.Status))
	if !r.Run.LastSeen.IsZero() {
		p(" · **its process is gone**, last seen %s", r.mdClock(r.Run.LastSeen))
	}
	p(" · started %s", r.mdClock(r.Run.Created))
	if !r.Run.Finished.IsZero() {
		p(" · finished %s", r.mdClock(r.Run.Finished))
	}
	if !r.Run.Start.IsZero() {
		p(" · took %s of active work · lasted %s from first start to last end", humanDuration(r.active),
			humanDuration(r.Run.End.Sub(r.Run.Start)))
	}
	p(" · report of %s (%s)\n\n", r.mdClock(r.Generated), md(r.loc.String()))

	p("| Restored | Failed | Blocked | Waiting for approval | Running | Pending | Skipped | Total |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	st := r.Summary.States
	p("| %d | %d | %d | %d | %d | %d | %d | %d |\n\n", st["succeeded"], st["failed"], st["blocked"],
		st["waiting"], st["running"], st["pending"], st["skipped"], r.Summary.Total)

	for _, b := range []struct {
		title, col string
		rows       []Breakdown
	}{{"By kind", "Kind", r.Summary.ByKind}, {"By effective criticality", "Criticality", r.Summary.ByCriticality}} {
		p("## %s\n\n| %s | Restored | %% | Failed | Blocked | Waiting | Pending |\n|---|---:|---:|---:|---:|---:|---:|\n", b.title, b.col)
		for _, row := range b.rows {
			p("| %s | %d / %d | %s %% | %d | %d | %d | %d |\n", md(row.Name), row.Restored, row.Total,
				formatPercent(row.Percent), row.States["failed"], row.States["blocked"], row.States["waiting"], row.States["pending"])
		}
		p("\n")
	}

	p("## Failures\n\n")
	if len(r.Failures) == 0 {
		p("No node failed.\n\n")
	} else {
		p("| Node | Kind | Criticality | Attempts | Last failed | Last error | Blocks | Who to call |\n|---|---|---|---:|---|---|---|---|\n")
		for _, f := range r.Failures {
			n, _ := r.node(f.NodeID)
			p("| **%s** | %s | %s | %d | %s | %s | %s | %s |\n", md(f.NodeID), md(f.Kind), md(f.Effective), f.Attempts,
				r.mdClock(f.At), md(f.LastError), md(joinMax(f.Blocks, 10)), md(orDash(contactLine(n))))
		}
		p("\n")
	}

	var waiting []Node
	for _, n := range r.Nodes {
		if n.State == "waiting" {
			waiting = append(waiting, n)
		}
	}
	if len(waiting) > 0 {
		p("## Waiting for approval\n\n| Node | Kind | Criticality | Waiting since | Who to call |\n|---|---|---|---|---|\n")
		for _, n := range waiting {
			p("| **%s** | %s | %s | %s | %s |\n", md(n.ID), md(n.Kind), md(n.Effective), r.mdClock(n.Started), md(orDash(contactLine(n))))
		}
		p("\n")
	}

	r.markdownDeadlines(p)

	p("## Approvals and overrides\n\n")
	if len(r.Decisions) == 0 {
		p("No approval or manual override in this run.\n\n")
	} else {
		p("| When | What | Node | By | Why |\n|---|---|---|---|---|\n")
		for _, d := range r.Decisions {
			p("| %s | %s | %s | **%s** | %s |\n", r.mdClock(d.At), md(d.Type), md(d.NodeID), md(d.By), md(d.Reason))
		}
		p("\n")
	}

	r.markdownClean(p)

	p("## Journal\n\n")
	if r.Journal.OK {
		p("The journal's hash chain is intact: %d entries verified", r.Journal.Entries)
		if r.Journal.Head != "" {
			p(", last hash `%s` (entry %d)", mdCode(r.Journal.Head), r.Journal.HeadSeq)
		}
		p(".\n\n")
	} else {
		p("**The journal's hash chain does NOT verify**")
		if r.Journal.FirstBad != 0 {
			p(": first bad entry #%d", r.Journal.FirstBad)
		}
		if r.Journal.Problem != "" {
			p(" (%s)", md(r.Journal.Problem))
		}
		p(". %d entries read. Treat this report's history as untrusted.\n\n", r.Journal.Entries)
	}

	p("## Every node\n\n| Node | State | Kind | Criticality | Zone | Wave | Attempts | Started | Ended | Owner | Note |\n|---|---|---|---|---|---:|---:|---|---|---|---|\n")
	for _, n := range r.Nodes {
		note := n.LastError
		switch {
		case len(n.BlockedBy) > 0:
			note = "blocked by " + joinMax(n.BlockedBy, 5)
		case n.MarkedBy != "":
			note = "marked done by " + n.MarkedBy + ": " + n.MarkReason
		}
		if len(n.Outputs) > 0 {
			var outs []string
			for _, o := range outputList(n.Outputs) {
				outs = append(outs, o.Key+" = "+o.Value)
			}
			if note != "" {
				note += " · "
			}
			note += "outputs: " + strings.Join(outs, ", ")
		}
		p("| %s | %s %s | %s | %s | %s | %d | %d | %s | %s | %s | %s |\n", md(n.ID), glyph(n.State), md(n.State), md(n.Kind),
			md(n.Effective), md(orDash(n.Zone)), n.Wave+1, len(n.Attempts), r.mdClock(n.Started), r.mdClock(n.Ended),
			md(orDash(contactLine(n))), md(truncate(note, 200)))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render markdown: %w", err)
	}
	return nil
}

// drillWhat says what a drill is, for the top of a drill's report.
const drillWhat = "an exercise on the real plan, not a restore of production; " +
	"the states below are those of the exercise"

// name is the report's title: a drill's report says so first.
func (r *Report) name() string {
	if r.Run.Drill {
		return "Drill report"
	}
	return "Rebuild report"
}

// cleanupCommand is the command that records the clean-up of drill id.
func cleanupCommand(id string) string {
	return fmt.Sprintf("reprise cleanup %s --by NAME --note \"what was cleaned up\"", shellWord(id))
}

// shellWord quotes s for a POSIX shell unless it is plainly one word.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *Report) mdClock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return r.clock(t)
}

// mdEscaper escapes what Markdown (CommonMark, GitHub tables) would read as
// markup or HTML, and keeps every value on one table line.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
	"<", "&lt;", "\r\n", " ", "\n", " ", "\r", " ",
)

func md(s string) string { return mdEscaper.Replace(s) }

// mdCode makes s safe inside a `code span`.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "|", `\|`).Replace(s)
}
