package sdk

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// lister lists two points in Paris time, stages into /srv/staging and
// fails to release point "bad"; it panics when asked to list for node
// "boom".
type lister struct{ scripted }

func (lister) ListRestorePoints(_ context.Context, req *Request) ([]ListedPoint, error) {
	if req.NodeID == "boom" {
		panic("catalogue index corrupted")
	}
	paris := time.FixedZone("CET", 3600)
	return []ListedPoint{
		{ID: "p1", Time: time.Date(2026, 11, 28, 3, 0, 0, 0, paris), Size: 42, Path: "/srv/vault/p1"},
		{ID: "p2", Time: time.Date(2026, 11, 29, 3, 0, 0, 5e8, paris), Size: -1, NeedsStaging: true},
	}, nil
}

func (lister) StageRestorePoint(_ context.Context, _ *Request, id string) (string, error) {
	return "/srv/staging/" + id, nil
}

func (lister) ReleaseRestorePoint(_ context.Context, _ *Request, id, _ string) error {
	if id == "bad" {
		return errors.New("umount: target is busy")
	}
	return nil
}

// TestListRestorePoints: the SDK says in Describe whether the plugin lists
// points, sends their times in UTC, and answers UNIMPLEMENTED for a plugin
// without the optional interfaces; a panic is an error, not a crash.
func TestListRestorePoints(t *testing.T) {
	ctx := context.Background()
	c := pair(t, lister{})
	d, err := c.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil || !d.GetListsRestorePoints() {
		t.Fatalf("Describe = %v, %v; want lists_restore_points", d, err)
	}
	resp, err := c.ListRestorePoints(ctx, &pluginv1.StepRequest{NodeId: "lis-data", ConfigJson: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetPoints()
	if len(got) != 2 || got[0].GetTime() != "2026-11-28T02:00:00Z" || got[0].GetSizeBytes() != 42 || got[0].GetPath() != "/srv/vault/p1" ||
		got[1].GetTime() != "2026-11-29T02:00:00.5Z" || got[1].GetSizeBytes() != 0 || !got[1].GetNeedsStaging() || got[1].GetPath() != "" {
		t.Errorf("points %v", got)
	}
	if _, err := c.ListRestorePoints(ctx, &pluginv1.StepRequest{NodeId: "boom"}); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "plugin panic: catalogue index corrupted") {
		t.Errorf("panic in ListRestorePoints: %v", err)
	}
	st, err := c.StageRestorePoint(ctx, &pluginv1.StageRestorePointRequest{Request: &pluginv1.StepRequest{NodeId: "lis-data"}, PointId: "p2"})
	if err != nil || st.GetPath() != "/srv/staging/p2" {
		t.Errorf("Stage = %v, %v", st, err)
	}
	if _, err := c.ReleaseRestorePoint(ctx, &pluginv1.ReleaseRestorePointRequest{PointId: "bad"}); err == nil ||
		!strings.Contains(err.Error(), `release restore point bad of node "": umount: target is busy`) {
		t.Errorf("Release(bad) = %v", err)
	}

	plain := pair(t, scripted{})
	if d, err := plain.Describe(ctx, &pluginv1.DescribeRequest{}); err != nil || d.GetListsRestorePoints() {
		t.Errorf("Describe(plain) = %v, %v; want no lists_restore_points", d, err)
	}
	if _, err := plain.ListRestorePoints(ctx, &pluginv1.StepRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ListRestorePoints(plain) = %v, want Unimplemented", err)
	}
	if _, err := plain.StageRestorePoint(ctx, &pluginv1.StageRestorePointRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("StageRestorePoint(plain) = %v, want Unimplemented", err)
	}
}
