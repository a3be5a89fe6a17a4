package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// Limits on a plugin's ListRestorePoints answer (see plugins/proto/README.md).
const (
	// MaxListedPoints is the most restore points a plugin may list for a node.
	MaxListedPoints = 1000
	// MaxPointPath is the longest path a plugin may give for a point, in bytes.
	MaxPointPath = 4096
	// maxPointProblems is how many problems of a bad answer are quoted.
	maxPointProblems = 5
)

// ErrBadPoints is returned when a plugin's ListRestorePoints or
// StageRestorePoint answer breaks the contract (bad id or time, duplicate,
// too many points, a path that is not absolute).
var ErrBadPoints = errors.New("answer breaks the restore-point contract")

var pointIDRE = regexp.MustCompile(graphs.IDPattern)

var _ step.PointLister = (*Host)(nil)

// ListRestorePoints asks req's plugin for the restore points of req's node
// and checks its answer: every id valid and unique, every time RFC 3339 in
// UTC, exactly one of path (absolute) and needs_staging, at most
// MaxListedPoints points. A bad answer is an error quoting the first
// problems; nothing of it is returned.
func (h *Host) ListRestorePoints(ctx context.Context, req step.Request) ([]step.ListedPoint, error) {
	p, pb, done, err := h.prepare(ctx, "list restore points of", req)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := p.rpc.ListRestorePoints(ctx, pb)
	if err != nil {
		return nil, h.pointCallError(ctx, p, "list restore points of node", req, "ListRestorePoints", err)
	}
	points, problems := checkListed(resp.GetPoints())
	if len(problems) > 0 {
		return nil, badPoints("list restore points of node", req, problems)
	}
	return points, nil
}

// StageRestorePoint asks req's plugin to make point id readable, and
// returns the folder it names (absolute, checked for length and UTF-8; the
// engine checks it lies under the node's roots).
func (h *Host) StageRestorePoint(ctx context.Context, req step.Request, id string) (string, error) {
	p, pb, done, err := h.prepare(ctx, "stage restore point of", req)
	if err != nil {
		return "", err
	}
	defer done()
	resp, err := p.rpc.StageRestorePoint(ctx, &pluginv1.StageRestorePointRequest{Request: pb, PointId: id})
	if err != nil {
		return "", h.pointCallError(ctx, p, "stage restore point "+id+" of node", req, "StageRestorePoint", err)
	}
	path := resp.GetPath()
	if why := badPath(path); why != "" {
		return "", badPoints("stage restore point "+id+" of node", req, []string{"path " + why})
	}
	return path, nil
}

// ReleaseRestorePoint asks req's plugin to undo the staging of point id.
func (h *Host) ReleaseRestorePoint(ctx context.Context, req step.Request, id, path string) error {
	p, pb, done, err := h.prepare(ctx, "release restore point of", req)
	if err != nil {
		return err
	}
	defer done()
	_, err = p.rpc.ReleaseRestorePoint(ctx, &pluginv1.ReleaseRestorePointRequest{Request: pb, PointId: id, Path: path})
	if err != nil {
		return h.pointCallError(ctx, p, "release restore point "+id+" of node", req, "ReleaseRestorePoint", err)
	}
	return nil
}

// pointCallError is callError, with a plain word for a plugin that does
// not implement the call.
func (h *Host) pointCallError(ctx context.Context, p *proc, op string, req step.Request, call string, err error) error {
	if status.Code(err) == codes.Unimplemented && ctx.Err() == nil {
		return fmt.Errorf("%s %q: plugin %q does not implement %s (the node's restore_points say from: plugin; see plugins/proto/README.md, \"Restore points\")",
			op, req.NodeID, req.Plugin, call)
	}
	return h.callError(ctx, p, op, req.NodeID, err)
}

func badPoints(op string, req step.Request, problems []string) error {
	if len(problems) > maxPointProblems {
		problems = append(problems[:maxPointProblems:maxPointProblems], fmt.Sprintf("and %d more", len(problems)-maxPointProblems))
	}
	return fmt.Errorf("%s %q: plugin %q: %w: %s", op, req.NodeID, req.Plugin, ErrBadPoints, strings.Join(problems, "; "))
}

// checkListed turns a ListRestorePoints answer into points, or says what
// is wrong with it.
func checkListed(in []*pluginv1.ListedRestorePoint) ([]step.ListedPoint, []string) {
	if len(in) > MaxListedPoints {
		return nil, []string{fmt.Sprintf("%d points listed, over the limit of %d", len(in), MaxListedPoints)}
	}
	var problems []string
	out := make([]step.ListedPoint, 0, len(in))
	seen := make(map[string]int, len(in))
	for i, lp := range in {
		where := fmt.Sprintf("point %d", i+1)
		id := lp.GetId()
		switch {
		case !pointIDRE.MatchString(id):
			problems = append(problems, fmt.Sprintf("%s: bad id %s (want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit)", where, quote(id)))
			continue
		case seen[id] > 0:
			problems = append(problems, fmt.Sprintf("%s: duplicate id %q (first at point %d)", where, id, seen[id]))
			continue
		}
		seen[id] = i + 1
		where = fmt.Sprintf("point %q", id)
		t, err := time.Parse(time.RFC3339, lp.GetTime())
		if _, off := t.Zone(); err != nil || off != 0 {
			problems = append(problems, fmt.Sprintf("%s: bad time %s (want RFC 3339 in UTC, like 2026-11-28T02:00:00Z)", where, quote(lp.GetTime())))
			continue
		}
		if t.Year() < 1970 {
			problems = append(problems, fmt.Sprintf("%s: time %s is before 1970", where, lp.GetTime()))
			continue
		}
		if lp.GetSizeBytes() > 1<<62 {
			problems = append(problems, fmt.Sprintf("%s: size %d bytes is not plausible", where, lp.GetSizeBytes()))
			continue
		}
		pt := step.ListedPoint{ID: id, Time: t.UTC(), Size: int64(lp.GetSizeBytes()), Path: lp.GetPath(), NeedsStaging: lp.GetNeedsStaging()}
		switch {
		case pt.NeedsStaging && pt.Path != "":
			problems = append(problems, fmt.Sprintf("%s: both a path and needs_staging (want exactly one)", where))
			continue
		case !pt.NeedsStaging:
			if why := badPath(pt.Path); why != "" {
				problems = append(problems, fmt.Sprintf("%s: path %s", where, why))
				continue
			}
		}
		out = append(out, pt)
	}
	return out, problems
}

// badPath says what is wrong with a path a plugin names ("" if nothing).
func badPath(p string) string {
	switch {
	case p == "":
		return "missing (want the point's folder, or needs_staging)"
	case len(p) > MaxPointPath:
		return fmt.Sprintf("is %d bytes long (limit %d)", len(p), MaxPointPath)
	case !utf8.ValidString(p) || strings.ContainsRune(p, 0):
		return fmt.Sprintf("%s is not valid UTF-8 text", quote(p))
	case !filepath.IsAbs(p):
		return fmt.Sprintf("%s is not absolute", quote(p))
	}
	return ""
}

// quote quotes at most 100 bytes of s.
func quote(s string) string {
	if len(s) > 100 {
		return fmt.Sprintf("%q… (%d bytes)", s[:100], len(s))
	}
	return fmt.Sprintf("%q", s)
}
