package engine

import (
	"context"
	"fmt"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// Converge mode (Options.Converge, `reprise run --check`) points reprise at
// a half-rebuilt site: every node's Check is asked before its Restore, and
// a node found restored is recorded so (a "restored" journal entry, with
// Check's outputs), after its Verify when the plugin has one, instead of
// being restored again.

// converging reports whether this run asks Check before every Restore.
func (r *runner) converging() bool { return r.e.opts.Converge || r.run.Options.Converge }

// checkFirst asks Check for node l before its restore. ok is false when the
// node must be restored (not restored, Check failed, or restored without an
// output a dependent uses, or with one holding a secret); otherwise status,
// message and outputs are the attempt's outcome (Verify's included).
func (r *runner) checkFirst(l launch) (status step.Status, msg string, outputs map[string]string, ok bool) {
	r.usedOnce.Do(func() { r.used = usedOutputs(r.g) })
	req := l.req
	req.Mode = step.ModeNormal
	cr := r.e.check(r.ctx, r.g, l.node, req)
	if !cr.Restored {
		r.log.Info("converge: check says not restored: restoring", zapNode(l.node.ID), zapString("check", r.e.red.String(cr.Message)))
		return "", "", nil, false
	}
	if missing := missingOutputs(r.used[l.node.ID], cr.Outputs); missing != "" {
		r.log.Info("converge: restored but check gave no "+missing+": restoring", zapNode(l.node.ID))
		return "", "", nil, false
	}
	if bad := r.e.secretOutputs(cr.Outputs); bad != "" {
		r.log.Warn("converge: check's "+bad+" holds a secret: restoring", zapNode(l.node.ID))
		return "", "", nil, false
	}
	status, vmsg, outputs := r.e.verifyRestored(r.ctx, r.g, l.node, req, cr.Outputs)
	if status != step.Succeeded {
		return status, "check: restored (" + cr.Message + "), but " + vmsg, outputs, true
	}
	return step.Succeeded, "found restored by check: " + cr.Message, outputs, true
}

// verifyRestored runs Verify (when the node's plugin has one) for a node
// that Check found restored, before it is recorded succeeded: on resume
// for a node left running, and in converge mode. outputs are Check's,
// Verify's merged over them. A failing Verify fails the attempt, as after
// a Restore.
func (e *Engine) verifyRestored(ctx context.Context, g *graphs.Graph, n *graphs.Node, req step.Request, outputs map[string]string) (step.Status, string, map[string]string) {
	if !hasVerify(n) {
		return step.Succeeded, "", outputs
	}
	cfg, err := e.resolveConfig(n, g.Dir, req.Inputs, false)
	if err != nil {
		return step.Failed, fmt.Sprintf("verify: resolve config: %v", err), outputs
	}
	req.Config = cfg
	vctx, cancel := context.WithTimeout(ctx, g.NodeTimeout(n))
	defer cancel()
	vr, err := e.hostOf(g).Verify(vctx, req)
	if err != nil {
		if vctx.Err() != nil {
			return step.Failed, fmt.Sprintf("verify: timed out after %s: %v", g.NodeTimeout(n), err), outputs
		}
		return step.Failed, "verify: " + err.Error(), outputs
	}
	if len(vr.Outputs) > 0 {
		merged := make(map[string]string, len(outputs)+len(vr.Outputs))
		for k, v := range outputs {
			merged[k] = v
		}
		for k, v := range vr.Outputs {
			merged[k] = v
		}
		outputs = merged
	}
	if vr.Status == step.Failed {
		return step.Failed, "verify: " + vr.Message, outputs
	}
	return step.Succeeded, vr.Message, outputs
}
