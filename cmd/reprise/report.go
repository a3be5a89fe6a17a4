package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprise-si/reprise/engine/report"
	"github.com/reprise-si/reprise/engine/view"
)

// reportFormats are the formats of `reprise report`, by name and by the
// output file's extension.
var reportFormats = map[string]string{
	"html": "html", "markdown": "markdown", "md": "markdown", "json": "json",
	"timeline": "timeline", "timeline-json": "timeline-json", "csv": "timeline", ".csv": "timeline",
	".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".json": "json",
}

func newReportCmd() *cobra.Command {
	var opts reportOptions
	cmd := &cobra.Command{
		Use:   "report [RUN]",
		Short: "Write a run's report: HTML for people, Markdown for e-mail, JSON for tools",
		Long: `Write the report of a run (default: the newest run of the state file): the
share of vital services back, counts by state, kind and effective
criticality, a timeline of every attempt, the graph coloured by state, the
failures with their last error, approvals and overrides with who, when and
why, and whether the journal's hash chain verifies; with zones and restore
points, the zones' certifications, every restore point's verdict and the data
lost per node (RPO achieved).

--format timeline writes the authorities' timeline as CSV (timeline-json as
JSON): every journaled action, in order, with its time in UTC and in --tz,
who, what, the node, its zone, the restore point, the verdict, and the
journal entry's hash, to check against ` + "`reprise log --verify`" + `.

HTML is one self-contained file (inline CSS and SVG, no script, nothing
fetched): it opens offline and prints. Without --format the format follows
the extension of -o (.html, .md, .json); on stdout it is Markdown.
A report is written even when the run's journal is broken (its hash chain
does not verify, or an entry cannot be read): every format then opens with
"journal broken at entry N: …", shows everything that could be read, and
reprise exits 3.
The report can be written while the run goes on: it then reads through the
running process's control socket.`,
		Example: `  reprise report -o rebuild.html
  reprise report 20261128-080000-ab12 --format markdown | mail -s "Rebuild, day 3" cellule@example.org
  reprise report --json > run.json
  reprise report 20261128-080000-ab12 --format timeline --tz Europe/Paris -o main-courante.csv`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.StatePath, _ = cmd.Flags().GetString("state")
			opts.FormatSet, opts.RunID = cmd.Flags().Changed("format"), argOr(args, "")
			res, err := runReport(cmd.Context(), opts, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			r := res.Report
			if err := writeReport(cmd.OutOrStdout(), opts.Output, res.Format, r); err != nil {
				return withCode(exitError, err)
			}
			if opts.Output != "" && opts.Output != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%s report of run %s: %s)\n", opts.Output, res.Format, r.Run.ID, r.Summary.Headline)
			}
			if r.Journal.Broken != "" {
				// Everything is written; the exit code says it is untrusted.
				return withCode(exitBrokenJournal, fmt.Errorf("run %s: %s", r.Run.ID, r.Journal.Broken))
			}
			return nil
		},
	}
	addStateFlag(cmd)
	cmd.Flags().StringVar(&opts.Format, "format", "", "html, markdown, json, timeline (CSV) or timeline-json (default: from -o's extension, else markdown)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "same as --format json")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&opts.TZ, "tz", "Local", `time zone of the times shown ("UTC", "Europe/Paris"; JSON always carries offsets)`)
	return cmd
}

// reportOptions are the options of `reprise report [RUN]`.
type reportOptions struct {
	// StatePath is the state file (--state).
	StatePath string
	// RunID is the run ("": the newest).
	RunID string
	// Format is html, markdown, json, timeline or timeline-json, or an
	// alias (md, csv); "": from Output's extension, else markdown.
	Format string
	// FormatSet says --format was given (it must then agree with JSON).
	FormatSet bool
	// JSON is --format json.
	JSON bool
	// Output is the file to write ("" or "-": stdout).
	Output string
	// TZ is the time zone of the times shown ("", "Local", "UTC" or an
	// IANA zone).
	TZ string
}

// reportResult is a run's report and the format to write it in.
type reportResult struct {
	Report *report.Report
	Format string
}

// runReport builds the report of run opts.RunID (the newest without one)
// in the format the options ask for; bad options are usage errors, a run
// that cannot be read exit 1. A graph snapshot that no longer parses is
// warned about on warn. A broken journal is no error here: the report says
// where it breaks (Journal.Broken).
func runReport(_ context.Context, opts reportOptions, warn io.Writer) (reportResult, error) {
	format := opts.Format
	if opts.JSON {
		if opts.FormatSet && format != "json" {
			return reportResult{}, usageError("--json and --format %s disagree", format)
		}
		format = "json"
	}
	f, err := reportFormat(format, opts.Output)
	if err != nil {
		return reportResult{}, err
	}
	loc, err := reportZone(opts.TZ)
	if err != nil {
		return reportResult{}, err
	}
	r, err := loadReport(opts.StatePath, opts.RunID, report.Options{Now: time.Now(), Location: loc}, warn)
	if err != nil {
		return reportResult{}, withCode(exitError, err)
	}
	return reportResult{Report: r, Format: f}, nil
}

// reportFormat picks the format from --format, else from the output
// file's extension, else Markdown.
func reportFormat(format, output string) (string, error) {
	if format != "" {
		f, ok := reportFormats[strings.ToLower(format)]
		if !ok || strings.HasPrefix(format, ".") {
			return "", usageError("--format %q: want html, markdown, json, timeline (CSV) or timeline-json", format)
		}
		return f, nil
	}
	if output != "" && output != "-" {
		ext := strings.ToLower(filepath.Ext(output))
		if f, ok := reportFormats[ext]; ok && strings.HasPrefix(ext, ".") {
			return f, nil
		}
		return "", usageError("-o %q: cannot tell the format from the extension; add --format html, markdown or json", output)
	}
	return "markdown", nil
}

func reportZone(tz string) (*time.Location, error) {
	switch tz {
	case "", "Local", "local":
		return time.Local, nil
	case "UTC", "utc":
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, usageError("--tz %q: %v (want UTC, Local or an IANA zone such as Europe/Paris)", tz, err)
	}
	return loc, nil
}

// loadReport reads everything a report needs about one run (the newest
// when runID is empty) and builds it. A graph snapshot that no longer
// parses is warned about on warn: the report then lacks kinds and
// dependencies but still shows states, times, failures and decisions. A
// journal that cannot be read to its end is not an error either: the
// report shows what could be read, under a banner saying where it breaks.
func loadReport(statePath, runID string, opts report.Options, warn io.Writer) (*report.Report, error) {
	r, live, closeFn, err := openReader(statePath)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	run, err := newestRun(r, runID)
	if err != nil {
		return nil, err
	}
	m, err := view.Load(r, run.ID, view.LoadOptions{Now: opts.Now, Live: live == run.ID, Journal: true})
	if err != nil {
		return nil, err
	}
	if m.GraphErr != nil {
		fmt.Fprintf(warn, "reprise: warning: %v; the report shows no kinds or dependencies\n", m.GraphErr)
	}
	return report.FromModel(m, opts), nil
}

// writeReport renders r in format f to output (stdout when "" or "-"). A
// file is written beside its final name and renamed into place, so that a
// reader never sees half a report.
func writeReport(stdout io.Writer, output, f string, r *report.Report) error {
	render := map[string]func(io.Writer) error{"html": r.HTML, "markdown": r.Markdown, "json": r.JSON,
		"timeline": r.TimelineCSV, "timeline-json": r.TimelineJSON}[f]
	if output == "" || output == "-" {
		return render(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
	if err != nil {
		return fmt.Errorf("write report %q: %w", output, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	err = render(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), output)
	}
	if err != nil {
		return fmt.Errorf("write report %q: %w", output, err)
	}
	return nil
}
