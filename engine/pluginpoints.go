package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
)

// PointCallTimeout bounds each ListRestorePoints, StageRestorePoint and
// ReleaseRestorePoint call (staging may mount a snapshot or unpack an
// archive). Like the scans, these calls run outside the node's timeout.
const PointCallTimeout = 10 * time.Minute

// pointClockSkew is how far in the future a listed point's time may be
// (the plugin's clock and the engine's may differ).
const pointClockSkew = time.Hour

// pluginPoints are the restore points a node's plugin lists: the host that
// asks it, the request that names the node, and the folders (the node's
// restore_points.roots) every point it names must lie under.
type pluginPoints struct {
	lister step.PointLister
	req    step.Request
	roots  []string // as written in the graph
	dir    string   // the graph's folder, for relative roots
}

// listPoints asks node l's plugin for its restore points and checks that
// each one it names lies under the node's roots and is not dated in the
// future. A plugin that breaks the contract fails the node: one point
// outside its roots is reason enough not to trust the others.
func (r *runner) listPoints(l launch) (*pluginPoints, []candidate, error) {
	n := l.node
	op := fmt.Sprintf("list restore points of node %q", n.ID)
	h := r.e.hostOf(r.g)
	lister, ok := h.(step.PointLister)
	if !ok {
		return nil, nil, fmt.Errorf("%s: the plugin host cannot ask plugins for restore points", op)
	}
	if rd, ok := h.(readier); ok {
		if err := rd.Ready(r.ctx, n.Plugin); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := r.e.resolveConfig(n, r.g.Dir, l.req.Inputs, false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: resolve config: %w", op, err)
	}
	src := &pluginPoints{lister: lister, req: l.req, roots: n.RestorePoints.Roots, dir: r.g.Dir}
	src.req.Config = cfg
	ctx, cancel := context.WithTimeout(r.ctx, PointCallTimeout)
	defer cancel()
	listed, err := lister.ListRestorePoints(ctx, src.req)
	if err != nil {
		return nil, nil, err
	}
	now := r.e.opts.Now()
	var problems []string
	out := make([]candidate, 0, len(listed))
	for _, lp := range listed {
		c := candidate{RestorePoint: graphs.RestorePoint{ID: lp.ID, Time: lp.Time, Path: lp.Path}, size: lp.Size, stage: lp.NeedsStaging}
		if lp.Time.After(now.Add(pointClockSkew)) {
			problems = append(problems, fmt.Sprintf("point %q: time %s is in the future", lp.ID, lp.Time.Format(time.RFC3339)))
			continue
		}
		if !lp.NeedsStaging {
			real, err := src.inside(lp.Path)
			if err != nil {
				problems = append(problems, fmt.Sprintf("point %q: %v", lp.ID, err))
				continue
			}
			c.Path = real
		}
		out = append(out, c)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return nil, nil, fmt.Errorf("%s: plugin %q: %s", op, n.Plugin, strings.Join(problems, "; "))
	}
	r.log.Info("restore points listed", zap.String("node", n.ID), zap.String("plugin", n.Plugin), zap.Int("points", len(out)))
	return src, out, nil
}

// inside returns path with its symbolic links resolved, if it lies
// strictly under one of the roots (also resolved); otherwise an error
// naming the path and the roots.
func (s *pluginPoints) inside(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		var pe interface{ Unwrap() error }
		if errors.As(err, &pe) {
			err = pe.Unwrap()
		}
		return "", fmt.Errorf("path %q cannot be read: %w", path, err)
	}
	if !filepath.IsAbs(real) {
		return "", fmt.Errorf("path %q is not absolute", path)
	}
	for _, root := range s.roots {
		rr, err := filepath.EvalSymlinks(resolvePath(s.dir, root))
		if err != nil {
			continue // not mounted (yet): no point lies under it
		}
		if rel, err := filepath.Rel(rr, real); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return real, nil
		}
	}
	resolved := ""
	if real != filepath.Clean(path) {
		resolved = fmt.Sprintf(" (it resolves to %q)", real)
	}
	return "", fmt.Errorf("path %q%s is outside the node's restore_points.roots (%s)", path, resolved, strings.Join(s.roots, ", "))
}

// stage asks the plugin to make point p readable, checks the folder it
// names, and returns it with the function that releases it (always
// callable once; its failure is logged, never fatal: the
// scan or restore is over).
func (s *pluginPoints) stage(r *runner, l launch, p candidate) (string, func(), error) {
	ctx, cancel := context.WithTimeout(r.ctx, PointCallTimeout)
	defer cancel()
	path, err := s.lister.StageRestorePoint(ctx, s.req, p.ID)
	if err != nil {
		return "", nil, err
	}
	release := func() {
		// A cancelled run still releases what it staged.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), PointCallTimeout)
		defer cancel()
		if err := s.lister.ReleaseRestorePoint(ctx, s.req, p.ID, path); err != nil {
			msg := r.e.red.String(err.Error())
			r.log.Error("release restore point", zap.String("node", l.node.ID), zap.String("point", p.ID), zap.String("error", msg))
			return
		}
		r.log.Info("restore point released", zap.String("node", l.node.ID), zap.String("point", p.ID))
	}
	real, err := s.inside(path)
	if err != nil {
		release()
		return "", nil, fmt.Errorf("stage restore point %s of node %q: plugin %q: %w", p.ID, l.node.ID, l.node.Plugin, err)
	}
	r.log.Info("restore point staged", zap.String("node", l.node.ID), zap.String("point", p.ID), zap.String("path", real))
	return real, release, nil
}
