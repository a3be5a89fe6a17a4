package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// Resume continues run runID ("": the latest unfinished run) from its stored
// graph snapshot. Succeeded and skipped nodes stay done; nodes left running
// by a crash are asked Check and run again only if not restored; failed and
// blocked nodes run again; waiting gates keep waiting for approval.
//
// With edited non-nil, the run goes on with that graph instead: changed
// nodes and their descendants run again, new nodes join, removed nodes
// leave, the journal records the difference (a graph-changed entry) and the
// snapshot is replaced, all in one transaction with the resume itself.
func (e *Engine) Resume(ctx context.Context, runID string, edited *graphs.Graph) (Result, error) {
	run, err := e.findRun(runID)
	if err != nil {
		return Result{}, err
	}
	if err := refuseCleanedUp("resume", run); err != nil {
		return Result{}, err
	}
	if edited == nil && run.Status == state.RunSucceeded {
		// Every node is done: a succeeded run is only ever put back to work
		// by ResetNodes, which changes its status in the same transaction.
		e.emit(Event{Time: e.opts.Now(), Type: EventRunFinished, RunID: run.ID, Total: run.Total, Message: "already succeeded: nothing to do"})
		return Result{RunID: run.ID, Status: state.RunSucceeded, Total: run.Total}, nil
	}
	stored, err := e.store.Nodes(run.ID)
	if err != nil {
		return Result{}, fmt.Errorf("resume run %q: %w", run.ID, err)
	}
	if edited == nil && allDone(stored) {
		return e.closeDone(ctx, run, stored)
	}
	g, err := e.snapshotGraph(run)
	if err != nil {
		return Result{}, err
	}
	byID := make(map[string]state.NodeRecord, len(stored))
	for _, rec := range stored {
		byID[rec.ID] = rec
	}
	var changes []state.Change
	var rerun map[string]bool
	if edited != nil {
		var ch []state.Change
		ch, rerun = e.applyEdit(&run, g, edited, byID)
		changes = append(changes, ch...)
		g = edited
	}
	a := graphs.Analyze(g)
	include, err := targetSet(g, a, run.Options.Targets)
	if err != nil {
		return Result{}, fmt.Errorf("resume run %q: %w", run.ID, err)
	}
	recs := make([]state.NodeRecord, len(g.Nodes))
	var crashed []int
	for i, n := range g.Nodes {
		rec, ok := byID[n.ID]
		if !ok {
			rec = state.NodeRecord{ID: n.ID, State: state.NodePending}
		}
		recs[i] = rec
		var why string
		switch {
		case include != nil && !include[i]:
			if rec.State != state.NodeSkipped {
				recs[i].State = state.NodeSkipped
				recs[i].LastError = "not targeted"
				changes = append(changes, e.nodeChange(run.ID, recs[i], state.EntrySkipped, "not targeted"))
			}
			continue
		case !ok:
			why = "new node in the edited graph"
		case rerun[n.ID]:
			why = "graph changed: node or an ancestor edited"
		case rec.State == state.NodeRunning:
			crashed = append(crashed, i)
			continue
		case rec.State == state.NodeFailed || rec.State == state.NodeBlocked:
			why = fmt.Sprintf("resume: was %s", rec.State)
		default:
			continue
		}
		recs[i].State = state.NodePending
		changes = append(changes, e.nodeChange(run.ID, recs[i], state.EntryReset, why))
	}
	changes = append(changes, e.checkCrashed(ctx, run, g, a, recs, crashed)...)
	run.Status = state.RunRunning
	run.Total = len(g.Nodes)
	run.Finished = time.Time{}
	r, err := e.newRunner(ctx, g, a, run, recs)
	if err != nil {
		return Result{}, err
	}
	defer e.release(r)
	r.changes = changes
	ent := r.entry(state.EntryRunResumed, "", fmt.Sprintf("resumed: %d of %d nodes done, %d left running were checked", r.doneCount(), len(recs), len(crashed)))
	r.addRunChange(ent)
	return r.loop()
}

func (e *Engine) findRun(runID string) (state.Run, error) {
	if runID == "" {
		run, err := e.store.LatestUnfinished()
		if err != nil {
			return state.Run{}, fmt.Errorf("find a run to resume: %w", err)
		}
		return run, nil
	}
	run, err := e.store.Run(runID)
	if err != nil {
		return state.Run{}, err
	}
	return run, nil
}

// snapshotGraph parses a run's stored graph under its original file name, so
// that relative paths (exec scripts, plugin binaries) resolve as at start.
func (e *Engine) snapshotGraph(run state.Run) (*graphs.Graph, error) {
	snap, err := e.store.Snapshot(run.ID)
	if err != nil {
		return nil, fmt.Errorf("reload graph of run %q: %w", run.ID, err)
	}
	g, err := graphs.Parse(run.GraphFile, snap)
	if err != nil {
		return nil, fmt.Errorf("reload graph snapshot of run %q: %w", run.ID, err)
	}
	return g, nil
}

func allDone(recs []state.NodeRecord) bool {
	for _, r := range recs {
		if !r.State.Done() {
			return false
		}
	}
	return true
}

// closeDone finishes a run whose nodes are all done without starting
// anything (a resume of a finished run, or of one whose last nodes were
// marked done by hand).
func (e *Engine) closeDone(ctx context.Context, run state.Run, recs []state.NodeRecord) (Result, error) {
	res := Result{RunID: run.ID, Status: state.RunSucceeded, Total: len(recs), Counts: map[state.NodeState]int{}}
	for _, r := range recs {
		res.Counts[r.State]++
	}
	if run.Status == state.RunSucceeded {
		return res, nil
	}
	now := e.opts.Now()
	run.Status = state.RunSucceeded
	run.Updated, run.Finished = now, now
	msg := summary(res)
	err := e.store.Apply(context.WithoutCancel(ctx), state.Change{RunID: run.ID, Run: &run,
		Entry: &state.Entry{Time: now, Type: state.EntryRunFinished, Message: msg}})
	if err != nil {
		return res, fmt.Errorf("finish run %q: %w", run.ID, err)
	}
	e.emit(Event{Time: now, Type: EventRunFinished, RunID: run.ID, Message: msg, Counts: res.Counts, Total: res.Total})
	return res, nil
}

func (e *Engine) nodeChange(runID string, rec state.NodeRecord, t state.EntryType, msg string) state.Change {
	return state.Change{RunID: runID, Node: &rec, Entry: &state.Entry{
		Time: e.opts.Now(), Type: t, NodeID: rec.ID, State: rec.State, Message: e.red.String(msg)}}
}

// applyEdit computes the difference between the stored graph and an edited
// one: the records of removed nodes go, the snapshot is replaced, and the
// changed nodes and all their descendants (in the edited graph) run again.
func (e *Engine) applyEdit(run *state.Run, old, edited *graphs.Graph, byID map[string]state.NodeRecord) ([]state.Change, map[string]bool) {
	diff := graphs.DiffGraphs(old, edited)
	ea := graphs.Analyze(edited)
	var changed []int
	for _, id := range diff.Changed {
		if i, ok := edited.Index(id); ok {
			changed = append(changed, i)
		}
	}
	rerun := map[string]bool{}
	for _, i := range graphs.Members(ea.Descendants(changed...)) {
		rerun[edited.Nodes[i].ID] = true
	}
	var changes []state.Change
	for _, id := range diff.Removed {
		changes = append(changes, state.Change{RunID: run.ID, RemoveNode: id})
		delete(byID, id)
	}
	run.GraphHash = edited.Hash()
	run.GraphFile = absPath(edited.File)
	run.GraphName = edited.Name
	rerunList := make([]string, 0, len(rerun))
	for id := range rerun {
		rerunList = append(rerunList, id)
	}
	sort.Strings(rerunList)
	now := e.opts.Now()
	msg := fmt.Sprintf("graph changed: %d added, %d removed, %d changed, %d to run again",
		len(diff.Added), len(diff.Removed), len(diff.Changed), len(rerunList))
	if len(diff.Plugins) > 0 {
		// Nodes already done with the old declaration stay done.
		msg += "; plugin declarations changed: " + strings.Join(diff.Plugins, ", ")
	}
	changes = append(changes, state.Change{RunID: run.ID, Snapshot: nonNil(edited.Source), Entry: &state.Entry{
		Time: now, Type: state.EntryGraphChanged, Message: msg,
		Data: map[string]string{
			"file":    run.GraphFile,
			"hash":    run.GraphHash,
			"added":   strings.Join(diff.Added, ","),
			"removed": strings.Join(diff.Removed, ","),
			"changed": strings.Join(diff.Changed, ","),
			"rerun":   strings.Join(rerunList, ","),
			"plugins": strings.Join(diff.Plugins, ","),
		}}})
	return changes, rerun
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// checkCrashed asks Check for every node left running by a crash: a node
// found restored is recorded succeeded (its step is not run again), any
// other goes back to pending. Checks run in parallel, like steps.
func (e *Engine) checkCrashed(ctx context.Context, run state.Run, g *graphs.Graph, a *graphs.Analysis, recs []state.NodeRecord, crashed []int) []state.Change {
	if len(crashed) == 0 {
		return nil
	}
	type outcome struct {
		restored bool
		msg      string
		outputs  map[string]string
	}
	out := make([]outcome, len(crashed))
	sem := make(chan struct{}, e.opts.Parallelism)
	var wg sync.WaitGroup
	for k, i := range crashed {
		req := e.checkRequest(run, g, a, recs, i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cr := e.check(ctx, g, g.Nodes[i], req)
			out[k] = outcome{cr.Restored, e.red.String(cr.Message), cr.Outputs}
		}()
	}
	wg.Wait()
	var changes []state.Change
	now := e.opts.Now()
	var used map[string]map[string][]string
	for k, i := range crashed {
		if !out[k].restored {
			continue
		}
		// Restored, but without an output a dependent uses: its step runs
		// again, so that the dependent gets the value.
		if used == nil {
			used = usedOutputs(g)
		}
		if missing := missingOutputs(used[g.Nodes[i].ID], out[k].outputs); missing != "" {
			out[k].restored = false
			out[k].msg = fmt.Sprintf("restored (%s), but check gave no %s: restoring it again", out[k].msg, missing)
		}
	}
	for k, i := range crashed {
		rec := &recs[i]
		rec.Ended = now
		if h := len(rec.History); h > 0 && rec.History[h-1].Ended.IsZero() {
			rec.History[h-1].Ended = now
			rec.History[h-1].Error = "engine stopped while the step ran"
		}
		if out[k].restored {
			rec.State = state.NodeSucceeded
			rec.LastError = ""
			rec.Outputs = out[k].outputs
			if h := len(rec.History); h > 0 {
				rec.History[h-1].Result = state.NodeSucceeded
			}
			changes = append(changes, e.nodeChange(run.ID, *rec, state.EntryRestored, "left running by a stopped engine; check: restored: "+out[k].msg))
			continue
		}
		rec.State = state.NodePending
		rec.LastError = "engine stopped while the step ran; check: " + out[k].msg
		if h := len(rec.History); h > 0 {
			rec.History[h-1].Result = state.NodeFailed
		}
		changes = append(changes, e.nodeChange(run.ID, *rec, state.EntryReset, "left running by a stopped engine; check: not restored: "+out[k].msg))
	}
	return changes
}

// checkRequest builds a Check request for node i from the stored outputs of
// its dependencies.
func (e *Engine) checkRequest(run state.Run, g *graphs.Graph, a *graphs.Analysis, recs []state.NodeRecord, i int) step.Request {
	n := g.Nodes[i]
	inputs := map[string]map[string]string{}
	for _, d := range a.Deps[i] {
		if recs[d].Outputs != nil {
			inputs[g.Nodes[d].ID] = recs[d].Outputs
		}
	}
	for _, ref := range graphs.Refs(n.With) {
		if ref.Node == "" {
			continue
		}
		if j, ok := g.Index(ref.Node); ok && recs[j].Outputs != nil {
			inputs[ref.Node] = recs[j].Outputs
		}
	}
	return step.Request{RunID: run.ID, NodeID: n.ID, Kind: n.Kind, Plugin: n.Plugin,
		Attempt: recs[i].Attempts, Inputs: inputs, Mode: step.ModeNormal, WorkDir: g.Dir, Drill: run.Options.Drill}
}

// usedOutputs returns, for every node whose outputs other nodes use
// (${nodes.ID.outputs.KEY} in their `with`), the keys used and by whom.
func usedOutputs(g *graphs.Graph) map[string]map[string][]string {
	used := map[string]map[string][]string{}
	for _, n := range g.Nodes {
		for _, ref := range graphs.Refs(n.With) {
			if ref.Node == "" {
				continue
			}
			if used[ref.Node] == nil {
				used[ref.Node] = map[string][]string{}
			}
			used[ref.Node][ref.Key] = append(used[ref.Node][ref.Key], n.ID)
		}
	}
	return used
}

// missingOutputs describes the used keys that have is missing ("" when
// none is): `output "host" (used by dpi)`.
func missingOutputs(used map[string][]string, have map[string]string) string {
	var missing []string
	for key, users := range used {
		if _, ok := have[key]; !ok {
			missing = append(missing, fmt.Sprintf("output %q (used by %s)", key, strings.Join(users, ", ")))
		}
	}
	sort.Strings(missing)
	return strings.Join(missing, ", ")
}

// check calls Check with the node's resolved config and its timeout; a
// failed call is "not restored", its error in the message.
func (e *Engine) check(ctx context.Context, g *graphs.Graph, n *graphs.Node, req step.Request) step.CheckResult {
	cfg, err := e.resolveConfig(n, req.Inputs, true)
	if err != nil {
		return step.CheckResult{Message: fmt.Sprintf("resolve config: %v", err)}
	}
	req.Config = cfg
	cctx, cancel := context.WithTimeout(ctx, g.NodeTimeout(n))
	defer cancel()
	cr, err := e.host.Check(cctx, req)
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return step.CheckResult{Message: fmt.Sprintf("check timed out after %s", g.NodeTimeout(n))}
		}
		return step.CheckResult{Message: "check: " + err.Error()}
	}
	if cr.Message == "" {
		if cr.Restored {
			cr.Message = "restored"
		} else {
			cr.Message = "not restored"
		}
	}
	if !cr.Restored {
		cr.Outputs = nil
	}
	return cr
}
