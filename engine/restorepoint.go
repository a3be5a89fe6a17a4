package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/scan"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// The outputs a node with restore points gets from the engine, beside its
// plugin's.
const (
	OutputRestorePoint     = view.OutputRestorePoint
	OutputRestorePointTime = view.OutputRestorePointTime
	OutputRestoreVerdict   = view.OutputRestoreVerdict
	// OutputDataLost is the RPO achieved: incident.detected minus the
	// chosen point's time (only with an incident).
	OutputDataLost = view.OutputDataLost
	// OutputSuspiciousPoint is set while the node waits for an operator's
	// decision on a suspicious point.
	OutputSuspiciousPoint = view.OutputSuspiciousPoint
)

// maxJournaledFindings bounds the findings written in one verdict entry.
const maxJournaledFindings = 20

// scanners compiles the graph's scanners once per run session.
type scanners struct {
	once sync.Once
	set  *scan.Set
	err  error
}

func (r *runner) scanSet(ctx context.Context) (*scan.Set, error) {
	r.scan.once.Do(func() {
		set, probs := CompileScanners(ctx, r.g)
		if len(probs) > 0 {
			msgs := make([]string, len(probs))
			for k, p := range probs {
				msgs[k] = p.String()
			}
			r.scan.err = fmt.Errorf("scanners: %s", strings.Join(msgs, "; "))
		}
		r.scan.set = set
	})
	return r.scan.set, r.scan.err
}

// pointOverrides are an operator's decisions for one node's points.
type pointOverrides struct {
	use        string // the point to use whatever its verdict ("" none)
	useBy      string
	exclude    map[string]string // point → who excluded it
	excludeWhy map[string]string
}

// overrides reads the node's restore-point decisions from the journal; the
// latest decision on a point wins.
func (e *Engine) overrides(runID, nodeID string) (pointOverrides, error) {
	o := pointOverrides{exclude: map[string]string{}, excludeWhy: map[string]string{}}
	err := e.store.Journal(runID, 0, func(en state.Entry) error {
		if en.Type != state.EntryPointOverride || en.NodeID != nodeID {
			return nil
		}
		p := en.Data["point"]
		switch en.Data["action"] {
		case "use":
			o.use, o.useBy = p, en.By
			delete(o.exclude, p)
		case "exclude":
			o.exclude[p], o.excludeWhy[p] = en.By, en.Message
			if o.use == p {
				o.use = ""
			}
		}
		return nil
	})
	return o, err
}

// pointChoice is what choosePoint decided.
type pointChoice struct {
	pt      *step.RestorePoint // the chosen point (nil: none)
	status  step.Status        // "" when a point was chosen
	msg     string
	outputs map[string]string
	// release undoes the staging of the chosen point once Restore and
	// Verify are over (nil: nothing staged).
	release func()
}

func failedChoice(msg string) pointChoice { return pointChoice{status: step.Failed, msg: msg} }

// choosePoint picks node l's restore point before its Restore: newest
// first, each scanned by the node's scanners and its verdict journaled; the
// first clean point (or the one an operator chose) is returned. A
// suspicious point makes the node wait for an operator; no clean point
// fails it with one line per point. The points come from the graph, or
// from the node's plugin (restore_points: {from: plugin}), staged for the
// scan when the plugin says so and released after it.
func (r *runner) choosePoint(l launch) pointChoice {
	n := l.node
	set, err := r.scanSet(r.ctx)
	if err != nil {
		return failedChoice(err.Error())
	}
	ov, err := r.e.overrides(r.run.ID, n.ID)
	if err != nil {
		return failedChoice(fmt.Sprintf("read restore-point decisions: %v", err))
	}
	var points []candidate
	var src *pluginPoints
	if n.RestorePoints.FromPlugin {
		src, points, err = r.listPoints(l)
		if err != nil {
			return failedChoice(r.e.red.String(err.Error()))
		}
		if len(points) == 0 {
			return failedChoice(fmt.Sprintf("no restore point: plugin %q listed none for the node", n.Plugin))
		}
	} else {
		for _, p := range n.RestorePoints.Points {
			points = append(points, candidate{RestorePoint: p})
		}
	}
	sort.SliceStable(points, func(a, b int) bool { return points[a].Time.After(points[b].Time) })
	var inc *graphs.Incident = r.g.Incident
	var lines []string
	for _, p := range points {
		line := fmt.Sprintf("%s (%s): ", p.ID, p.Time.UTC().Format(time.RFC3339))
		used := ov.use == p.ID
		switch {
		case !used && ov.exclude[p.ID] != "":
			why := fmt.Sprintf("excluded by %s: %s", ov.exclude[p.ID], ov.excludeWhy[p.ID])
			r.journalPoint(l, state.EntryPointSkipped, p.RestorePoint, why, map[string]string{"why": why})
			lines = append(lines, line+why)
			continue
		case !used && inc != nil && p.Time.After(inc.Detected):
			why := fmt.Sprintf("taken after the incident was detected (%s)", inc.Detected.UTC().Format(time.RFC3339))
			r.journalPoint(l, state.EntryPointSkipped, p.RestorePoint, why, map[string]string{"why": why})
			lines = append(lines, line+why)
			continue
		case ov.use != "" && !used:
			continue // the operator chose another point
		}
		path, release := resolvePath(r.g.Dir, p.Path), func() {}
		if p.stage {
			path, release, err = src.stage(r, l, p)
			if err != nil {
				return failedChoice(r.e.red.String(err.Error()))
			}
		}
		res, err := set.Scan(r.ctx, path, n.Scan...)
		if err != nil {
			release()
			return failedChoice(fmt.Sprintf("scan restore point %s: %v", p.ID, r.e.red.String(err.Error())))
		}
		r.journalVerdict(l, p, res)
		if used || res.Verdict == scan.Clean {
			ch := r.chosen(l, p.RestorePoint, path, res, used, ov.useBy)
			ch.release = release
			return ch
		}
		release()
		if res.Verdict == scan.Suspicious {
			msg := fmt.Sprintf("restore point %s (%s) is suspicious: %s; decide with `reprise restore-point %s %s --use %s` or `--exclude %s`, with --by NAME --reason TEXT, then resume",
				p.ID, p.Time.UTC().Format(time.RFC3339), findingsText(res, 5), r.run.ID, n.ID, p.ID, p.ID)
			return pointChoice{status: step.Waiting, msg: msg, outputs: map[string]string{OutputSuspiciousPoint: p.ID}}
		}
		lines = append(lines, line+string(res.Verdict)+": "+findingsText(res, 3))
	}
	if ov.use != "" && !hasCandidate(points, ov.use) {
		return failedChoice(fmt.Sprintf("restore point %q chosen by %s is not among the node's points", ov.use, ov.useBy))
	}
	return failedChoice("no clean restore point:\n" + strings.Join(lines, "\n"))
}

// candidate is a restore point the engine may choose: one of the graph's,
// or one the node's plugin listed.
type candidate struct {
	graphs.RestorePoint
	size  int64 // bytes, when the plugin said (0: unknown)
	stage bool  // the plugin must stage it before it can be read
}

func hasPoint(points []graphs.RestorePoint, id string) bool {
	for _, p := range points {
		if p.ID == id {
			return true
		}
	}
	return false
}

func hasCandidate(points []candidate, id string) bool {
	for _, p := range points {
		if p.ID == id {
			return true
		}
	}
	return false
}

// chosen journals the choice and returns the point with its outputs.
func (r *runner) chosen(l launch, p graphs.RestorePoint, path string, res scan.Result, used bool, by string) pointChoice {
	out := map[string]string{
		OutputRestorePoint:     p.ID,
		OutputRestorePointTime: p.Time.UTC().Format(time.RFC3339),
		OutputRestoreVerdict:   string(res.Verdict),
	}
	data := map[string]string{"verdict": string(res.Verdict), "path": path}
	why := "first clean point, newest first"
	if used {
		why = "chosen by " + by
		data["by"] = by
	}
	if inc := r.g.Incident; inc != nil {
		lost := inc.Detected.Sub(p.Time)
		out[OutputDataLost] = formatLost(lost)
		data["data_lost"] = out[OutputDataLost]
	}
	r.journalPoint(l, state.EntryPointChosen, p, why, data)
	return pointChoice{pt: &step.RestorePoint{ID: p.ID, Time: p.Time, Path: path}, outputs: out}
}

// formatLost writes a data-loss duration rounded to the minute ("26h30m";
// negative when the point is later than the detection, by an override).
func formatLost(d time.Duration) string {
	s := d.Round(time.Minute).String()
	return strings.TrimSuffix(s, "0s")
}

// journalVerdict writes a point's verdict with its findings.
func (r *runner) journalVerdict(l launch, p candidate, res scan.Result) {
	var sums []string
	for _, s := range res.Scanners {
		sums = append(sums, fmt.Sprintf("%s (%s): %s: %s", s.Name, s.Type, s.Verdict, s.Summary))
	}
	data := map[string]string{
		"verdict":  string(res.Verdict),
		"files":    fmt.Sprint(res.Files),
		"bytes":    fmt.Sprint(res.Bytes),
		"scanners": strings.Join(sums, "\n"),
	}
	if p.size > 0 {
		data["size"] = fmt.Sprint(p.size)
	}
	if f := findingLines(res, maxJournaledFindings); f != "" {
		data["findings"] = f
	}
	msg := fmt.Sprintf("%s: %s", p.ID, res.Verdict)
	if len(res.Findings) > 0 {
		msg += ": " + findingsText(res, 3)
	}
	r.journalPoint(l, state.EntryScanned, p.RestorePoint, msg, data)
	r.log.Info("restore point scanned", zap.String("node", l.node.ID), zap.String("point", p.ID),
		zap.String("verdict", string(res.Verdict)), zap.Int64("files", res.Files), zap.Int("findings", len(res.Findings)))
	r.e.emit(Event{Time: r.e.opts.Now(), Type: EventPointScanned, RunID: r.run.ID, NodeID: l.node.ID,
		Attempt: l.attempt, Message: msg})
}

// journalPoint appends a restore-point entry for node l (from the step's
// goroutine: an entry alone, no record change, so it cannot race the
// scheduler's writes of the node's record).
func (r *runner) journalPoint(l launch, t state.EntryType, p graphs.RestorePoint, msg string, data map[string]string) {
	if data == nil {
		data = map[string]string{}
	}
	data["point"] = p.ID
	data["time"] = p.Time.UTC().Format(time.RFC3339)
	for k, v := range data {
		data[k] = r.e.red.String(v)
	}
	en := &state.Entry{Time: r.e.opts.Now(), Type: t, NodeID: l.node.ID, Attempt: l.attempt,
		Message: r.e.red.String(msg), Data: data}
	if err := r.e.store.Apply(r.pctx, state.Change{RunID: r.run.ID, Entry: en}); err != nil {
		r.log.Error("journal restore point", zap.String("node", l.node.ID), zap.Error(err))
	}
}

// findingsText says the first k findings in one line.
func findingsText(res scan.Result, k int) string {
	if len(res.Findings) == 0 {
		return "no findings"
	}
	parts := make([]string, 0, k)
	for _, f := range res.Findings[:min(k, len(res.Findings))] {
		parts = append(parts, fmt.Sprintf("%s (%s %s)", f.File, f.Scanner, shortRule(f.Rule)))
	}
	s := strings.Join(parts, ", ")
	if more := countFindings(res) - len(parts); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

func countFindings(res scan.Result) int {
	n := 0
	for _, s := range res.Scanners {
		n += s.Findings
	}
	return max(n, len(res.Findings))
}

// findingLines is one line per finding: file, scanner, rule, verdict.
func findingLines(res scan.Result, k int) string {
	var b strings.Builder
	for j, f := range res.Findings {
		if j == k {
			fmt.Fprintf(&b, "… and %d more\n", countFindings(res)-k)
			break
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", f.File, f.Scanner, f.Rule, f.Verdict)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func shortRule(rule string) string {
	if len(rule) == 64 { // a SHA-256
		return "sha256 " + rule[:12] + "…"
	}
	return rule
}

// refusePointGate refuses to approve a node waiting on a suspicious restore
// point: approving would mark it done without restoring anything.
func refusePointGate(runID string, rec state.NodeRecord) error {
	if p := rec.Outputs[OutputSuspiciousPoint]; p != "" {
		return fmt.Errorf("approve node %q of run %q: %w: it waits for a decision on suspicious restore point %q: use `reprise restore-point %s %s --use %s` or `--exclude %s` (with --by and --reason), then resume",
			rec.ID, runID, ErrPointDecision, p, runID, rec.ID, p, p)
	}
	return nil
}
