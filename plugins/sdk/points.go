package sdk

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// PointLister is implemented by plugins that keep a catalogue of a node's
// backups: reprise asks it for the points of a node whose graph entry says
// `restore_points: {from: plugin, roots: […]}`, scans them newest first and
// sends the first clean one to Restore as Request.RestorePoint. A plugin
// that implements it says so in Describe on its own (Serve does it).
// ListRestorePoints must have no side effects.
type PointLister interface {
	ListRestorePoints(ctx context.Context, req *Request) ([]ListedPoint, error)
}

// PointStager is implemented by a PointLister whose points are not
// readable as they stand (a snapshot to mount, an archive to unpack): it
// makes point id readable under one of the node's roots and returns the
// folder; reprise calls ReleaseRestorePoint with that folder once it no
// longer reads it (after the scan of a rejected point, after Restore and
// Verify of the chosen one). ReleaseRestorePoint must accept a point that is
// not, or no longer, staged; a point staged by a run that died may never be
// released: clean up stale stagings when staging again.
type PointStager interface {
	StageRestorePoint(ctx context.Context, req *Request, id string) (path string, err error)
	ReleaseRestorePoint(ctx context.Context, req *Request, id, path string) error
}

// ListedPoint is one restore point a PointLister offers. Set exactly one of
// Path and NeedsStaging.
type ListedPoint struct {
	// ID is unique among the node's points: 1 to 128 letters, digits, '.',
	// '_' or '-', starting with a letter or digit.
	ID string
	// Time is when the backup was taken (sent in UTC).
	Time time.Time
	// Size is the point's size in bytes, for the operator (0: unknown).
	Size int64
	// Path is the point's folder: absolute, readable by the reprise host,
	// under one of the node's restore_points.roots.
	Path string
	// NeedsStaging: reprise calls StageRestorePoint before reading the point.
	NeedsStaging bool
}

func (s *server) ListRestorePoints(ctx context.Context, pb *pluginv1.StepRequest) (*pluginv1.ListRestorePointsResponse, error) {
	return serveStep(s, ctx, pb, func(ctx context.Context, req *Request) (*pluginv1.ListRestorePointsResponse, error) {
		l, ok := s.impl.(PointLister)
		if !ok {
			return nil, status.Error(codes.Unimplemented, "this plugin does not list restore points")
		}
		points, err := l.ListRestorePoints(ctx, req)
		if err != nil {
			return nil, callErr(ctx, "list restore points of node", req, err)
		}
		resp := &pluginv1.ListRestorePointsResponse{Points: make([]*pluginv1.ListedRestorePoint, len(points))}
		for i, p := range points {
			resp.Points[i] = &pluginv1.ListedRestorePoint{Id: p.ID, Time: p.Time.UTC().Format(time.RFC3339Nano),
				SizeBytes: uint64(max(p.Size, 0)), Path: p.Path, NeedsStaging: p.NeedsStaging}
		}
		return resp, nil
	})
}

func (s *server) StageRestorePoint(ctx context.Context, pb *pluginv1.StageRestorePointRequest) (*pluginv1.StageRestorePointResponse, error) {
	return serveStep(s, ctx, pb.GetRequest(), func(ctx context.Context, req *Request) (*pluginv1.StageRestorePointResponse, error) {
		st, ok := s.impl.(PointStager)
		if !ok {
			return nil, status.Error(codes.Unimplemented, "this plugin does not stage restore points")
		}
		path, err := st.StageRestorePoint(ctx, req, pb.GetPointId())
		if err != nil {
			return nil, callErr(ctx, "stage restore point "+pb.GetPointId()+" of node", req, err)
		}
		return &pluginv1.StageRestorePointResponse{Path: path}, nil
	})
}

func (s *server) ReleaseRestorePoint(ctx context.Context, pb *pluginv1.ReleaseRestorePointRequest) (*pluginv1.ReleaseRestorePointResponse, error) {
	return serveStep(s, ctx, pb.GetRequest(), func(ctx context.Context, req *Request) (*pluginv1.ReleaseRestorePointResponse, error) {
		st, ok := s.impl.(PointStager)
		if !ok {
			return nil, status.Error(codes.Unimplemented, "this plugin does not stage restore points")
		}
		if err := st.ReleaseRestorePoint(ctx, req, pb.GetPointId(), pb.GetPath()); err != nil {
			return nil, callErr(ctx, "release restore point "+pb.GetPointId()+" of node", req, err)
		}
		return &pluginv1.ReleaseRestorePointResponse{}, nil
	})
}

// callErr turns an implementation's error into the call's gRPC error.
func callErr(ctx context.Context, op string, req *Request, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unknown, strings.ToValidUTF8(fmt.Sprintf("%s %q: %v", op, req.NodeID, err), "\uFFFD"))
}
