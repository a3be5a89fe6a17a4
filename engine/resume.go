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
	"github.com/reprise-si/reprise/engine/view"
	"github.com/reprise-si/reprise/graphs"
)

// ResumeOptions say how Resume goes on with a run. The zero value resumes
// from the stored graph snapshot.
type ResumeOptions struct {
	// Graph, when set, is an edited graph that replaces the snapshot (see
	// EditPlan for what an edit does).
	Graph *graphs.Graph
	// RerunChanged runs again the done nodes whose step the edit changed
	// (otherwise they stay done).
	RerunChanged bool
	// Only, when set, restricts what runs to these nodes (retry): other
	// failed or blocked nodes stay so, other pending nodes wait for the
	// next resume.
	Only []string
	// By, when set, is who resumed the run (an operator of the dashboard,
	// or `resume --by`), kept in the run-resumed journal entry.
	By string
}

// Resume continues run runID ("": the latest unfinished run) from its stored
// graph snapshot. Succeeded and skipped nodes stay done; nodes left running
// by a crash are asked Check and run again only if not restored; failed and
// blocked nodes run again; waiting gates keep waiting for approval.
//
// With edited non-nil, the run goes on with that graph instead, as
// ResumeWith with ResumeOptions{Graph: edited} does.
func (e *Engine) Resume(ctx context.Context, runID string, edited *graphs.Graph) (Result, error) {
	return e.ResumeWith(ctx, runID, ResumeOptions{Graph: edited})
}

// ResumeWith continues run runID as Resume does, with options. With an
// edited graph, the edit's plan (PlanEdit) is applied: new nodes join,
// removed nodes leave, nodes not done whose step changed take the new
// definition, done nodes stay done unless RerunChanged; the journal records
// the plan (a graph-changed entry) and the snapshot is replaced, all in one
// transaction with the resume itself.
func (e *Engine) ResumeWith(ctx context.Context, runID string, o ResumeOptions) (Result, error) {
	edited := o.Graph
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
		plan := PlanEdit(run, g, edited, stored, o.RerunChanged)
		changes = e.applyEdit(&run, plan, edited, byID)
		rerun = map[string]bool{}
		for _, it := range plan.Rerun {
			rerun[it.ID] = true
		}
		g = edited
	}
	var only map[string]bool
	if o.Only != nil {
		only = make(map[string]bool, len(o.Only))
		for _, id := range o.Only {
			only[id] = true
		}
	}
	a := graphs.Analyze(g)
	include, err := targetSet(g, a, run.Options.Targets)
	if err != nil {
		return Result{}, fmt.Errorf("resume run %q: %w", run.ID, err)
	}
	if err := e.checkPins(ctx, g, include); err != nil {
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
			why = "graph changed: step changed since done, --rerun-changed"
		case rec.State == state.NodeRunning:
			crashed = append(crashed, i)
			continue
		case only != nil && !only[n.ID]:
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
	r, err := e.newRunner(ctx, g, a, run, recs, only)
	if err != nil {
		return Result{}, err
	}
	defer e.release(r)
	r.changes = changes
	for _, i := range crashed {
		if recs[i].State == state.NodeFailed {
			r.blockDescendants(i)
		}
	}
	msg := fmt.Sprintf("resumed: %d of %d nodes done, %d left running were checked", r.doneCount(), len(recs), len(crashed))
	if only != nil {
		msg += fmt.Sprintf("; only %s may run", strings.Join(o.Only, ", "))
	}
	ent := r.entry(state.EntryRunResumed, "", msg)
	ent.By = o.By
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
	g, err := view.ReadGraph(e.store, run)
	if err != nil {
		return nil, fmt.Errorf("reload graph: %w", err)
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

// applyEdit applies an edit's plan: the records of removed nodes go, the
// snapshot and the run's graph are replaced, and the journal records the
// plan. The nodes to run again are reset by the caller.
func (e *Engine) applyEdit(run *state.Run, plan EditPlan, edited *graphs.Graph, byID map[string]state.NodeRecord) []state.Change {
	var changes []state.Change
	for _, it := range plan.Removed {
		changes = append(changes, state.Change{RunID: run.ID, RemoveNode: it.ID})
		delete(byID, it.ID)
	}
	run.GraphHash = edited.Hash()
	run.GraphFile = absPath(edited.File)
	run.GraphName = edited.Name
	changes = append(changes, state.Change{RunID: run.ID, Snapshot: nonNil(edited.Source), Entry: &state.Entry{
		Time: e.opts.Now(), Type: state.EntryGraphChanged, Message: e.red.String(plan.Summary()),
		Data: plan.journalData(run.GraphHash)}})
	return changes
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
		failed   bool // restored, but Verify failed
		msg      string
		outputs  map[string]string
	}
	out := make([]outcome, len(crashed))
	used := usedOutputs(g)
	sem := make(chan struct{}, e.opts.Parallelism)
	var wg sync.WaitGroup
	for k, i := range crashed {
		req := e.checkRequest(run, g, a, recs, i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n := g.Nodes[i]
			cr := e.check(ctx, g, n, req)
			o := outcome{restored: cr.Restored, msg: e.red.String(cr.Message), outputs: cr.Outputs}
			if o.restored {
				// Restored, but without an output a dependent uses: its step
				// runs again, so that the dependent gets the value.
				if bad := e.secretOutputs(o.outputs); bad != "" {
					o.restored, o.outputs = false, nil
					o.msg = fmt.Sprintf("restored, but check's %s holds a secret (a secret must not travel through the state file): restoring it again", bad)
				} else if missing := missingOutputs(used[n.ID], o.outputs); missing != "" {
					o.restored = false
					o.msg = fmt.Sprintf("restored (%s), but check gave no %s: restoring it again", o.msg, missing)
				}
			}
			if o.restored {
				// Restored is not healthy: Verify, as after a Restore.
				status, vmsg, outputs := e.verifyRestored(ctx, g, n, req, o.outputs)
				o.outputs = outputs
				if status != step.Succeeded {
					o.restored, o.failed = false, true
					o.msg = e.red.String(fmt.Sprintf("restored (%s), but %s", o.msg, vmsg))
				}
			}
			out[k] = o
		}()
	}
	wg.Wait()
	var changes []state.Change
	now := e.opts.Now()
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
		if out[k].failed && g.NodeRetries(g.Nodes[i]) == 0 {
			// Verify failed: the attempt failed, and without retries the
			// node fails (its dependents are blocked by the runner).
			rec.State = state.NodeFailed
			rec.LastError = "left running by a stopped engine; check: " + out[k].msg
			rec.Outputs = nil
			if h := len(rec.History); h > 0 {
				rec.History[h-1].Result = state.NodeFailed
				rec.History[h-1].Error = rec.LastError
			}
			changes = append(changes, e.nodeChange(run.ID, *rec, state.EntryFailed, rec.LastError))
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
	cfg, err := e.resolveConfig(n, g.Dir, req.Inputs, true)
	if err != nil {
		return step.CheckResult{Message: fmt.Sprintf("resolve config: %v", err)}
	}
	req.Config = cfg
	cctx, cancel := context.WithTimeout(ctx, g.NodeTimeout(n))
	defer cancel()
	cr, err := e.hostOf(g).Check(cctx, req)
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
