package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/internal/wire"
	pluginv1 "github.com/reprise-si/reprise/plugins/proto/reprise/plugin/v1"
)

// pointsPlugin lists restore points straight on the generated service,
// without the SDK, so that it can answer what the SDK would never send:
// its ListRestorePoints and StageRestorePoint answer by the node's
// `with.answer`.
type pointsPlugin struct {
	pluginv1.UnimplementedPluginServer
}

func (pointsPlugin) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return &pluginv1.DescribeResponse{Name: "rawpoints", Version: "0.1.0", ListsRestorePoints: true}, nil
}

func answerOf(r *pluginv1.StepRequest) string {
	var cfg struct {
		Answer string `json:"answer"`
	}
	_ = json.Unmarshal(r.GetConfigJson(), &cfg)
	return cfg.Answer
}

func lp(id, t, path string) *pluginv1.ListedRestorePoint {
	return &pluginv1.ListedRestorePoint{Id: id, Time: t, Path: path}
}

func (pointsPlugin) ListRestorePoints(_ context.Context, r *pluginv1.StepRequest) (*pluginv1.ListRestorePointsResponse, error) {
	const t = "2026-11-28T02:00:00Z"
	var pts []*pluginv1.ListedRestorePoint
	switch answerOf(r) {
	case "ok":
		pts = []*pluginv1.ListedRestorePoint{lp("p1", t, "/srv/vault/p1"),
			{Id: "p2", Time: "2026-11-29T02:00:00.5+00:00", SizeBytes: 1 << 30, NeedsStaging: true}}
	case "duplicate":
		pts = []*pluginv1.ListedRestorePoint{lp("p1", t, "/srv/p1"), lp("p2", t, "/srv/p2"), lp("p1", t, "/srv/p1b")}
	case "badtime":
		pts = []*pluginv1.ListedRestorePoint{lp("p1", "yesterday", "/srv/p1"), lp("p2", "2026-11-28T02:00:00+02:00", "/srv/p2"),
			lp("p3", "", "/srv/p3"), lp("p4", "0001-01-01T00:00:00Z", "/srv/p4")}
	case "badid":
		pts = []*pluginv1.ListedRestorePoint{lp("../../etc", t, "/srv/p1"), lp("", t, "/srv/p2"), lp(strings.Repeat("x", 129), t, "/srv/p3")}
	case "paths":
		pts = []*pluginv1.ListedRestorePoint{lp("rel", t, "backups/p1"), lp("none", t, ""),
			{Id: "both", Time: t, Path: "/srv/p", NeedsStaging: true}, lp("long", t, "/"+strings.Repeat("a", 5000))}
	case "many":
		for i := range host.MaxListedPoints + 1 {
			pts = append(pts, lp(fmt.Sprintf("p%d", i), t, fmt.Sprintf("/srv/p%d", i)))
		}
	case "hundreds":
		for i := range 250 {
			pts = append(pts, lp(fmt.Sprintf("p%d", i), "bad", "/srv/p"))
		}
	case "huge": // 5 MiB, over gRPC's default limit but within the host's
		for i := range 5 {
			pts = append(pts, lp(fmt.Sprintf("p%d", i), t, "/"+strings.Repeat("b", 1<<20)))
		}
	}
	return &pluginv1.ListRestorePointsResponse{Points: pts}, nil
}

func (pointsPlugin) StageRestorePoint(_ context.Context, r *pluginv1.StageRestorePointRequest) (*pluginv1.StageRestorePointResponse, error) {
	switch answerOf(r.GetRequest()) {
	case "ok":
		return &pluginv1.StageRestorePointResponse{Path: "/run/staging/" + r.GetPointId()}, nil
	case "relative":
		return &pluginv1.StageRestorePointResponse{Path: "staging/" + r.GetPointId()}, nil
	}
	return &pluginv1.StageRestorePointResponse{}, nil
}

func serveRawPoints() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         wire.PluginSet(pointsPlugin{}),
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// TestListRestorePoints: a real plugin process's ListRestorePoints answer
// is checked against the contract; every bad answer is an error naming the
// plugin, the node and what is wrong (never a panic, nothing returned).
func TestListRestorePoints(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 90*time.Second)
	points, err := h.ListRestorePoints(ctx, req("rawpoints", "lis-data", map[string]any{"answer": "ok"}))
	if err != nil {
		t.Fatalf("ListRestorePoints(ok) = %v", err)
	}
	want := []step.ListedPoint{
		{ID: "p1", Time: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC), Path: "/srv/vault/p1"},
		{ID: "p2", Time: time.Date(2026, 11, 29, 2, 0, 0, 5e8, time.UTC), Size: 1 << 30, NeedsStaging: true},
	}
	if fmt.Sprint(points) != fmt.Sprint(want) {
		t.Errorf("points\n got %+v\nwant %+v", points, want)
	}
	for _, tc := range []struct {
		name, answer string
		want         []string
	}{
		{"duplicate ids", "duplicate", []string{`point 3: duplicate id "p1" (first at point 1)`}},
		{"bad times", "badtime", []string{
			`point "p1": bad time "yesterday" (want RFC 3339 in UTC, like 2026-11-28T02:00:00Z)`,
			`point "p2": bad time "2026-11-28T02:00:00+02:00"`, `point "p3": bad time ""`, `point "p4": time 0001-01-01T00:00:00Z is before 1970`}},
		{"bad ids", "badid", []string{`point 1: bad id "../../etc"`, `point 2: bad id ""`, `point 3: bad id "xxxx`}},
		{"bad paths", "paths", []string{`point "rel": path "backups/p1" is not absolute`, `point "none": path missing`,
			`point "both": both a path and needs_staging`, `point "long": path is 5001 bytes long (limit 4096)`}},
		{"too many", "many", []string{"1001 points listed, over the limit of 1000"}},
		{"hundreds of problems", "hundreds", []string{`point "p4": bad time "bad"`, "and 245 more"}},
		{"five MiB of paths", "huge", []string{`point "p0": path is 1048577 bytes long (limit 4096)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			points, err := h.ListRestorePoints(ctx, req("rawpoints", "lis-data", map[string]any{"answer": tc.answer}))
			if err == nil || points != nil {
				t.Fatalf("ListRestorePoints = %v, %v; want an error", points, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `list restore points of node "lis-data": plugin "rawpoints": `) {
				t.Errorf("error %q does not name the node and the plugin", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n %s\nwant it to hold\n %s", msg, w)
				}
			}
			if !errors.Is(err, host.ErrBadPoints) {
				t.Errorf("error %v is not ErrBadPoints", err)
			}
		})
	}
}

// TestStageRestorePoint: the staged folder a plugin names is checked; a
// plugin without the optional calls gets an error saying which call it
// lacks.
func TestStageRestorePoint(t *testing.T) {
	h := newHost(t, hostOpts(t))
	ctx := ctxT(t, 60*time.Second)
	path, err := h.StageRestorePoint(ctx, req("rawpoints", "lis-data", map[string]any{"answer": "ok"}), "p2")
	if err != nil || path != "/run/staging/p2" {
		t.Fatalf("StageRestorePoint(ok) = %q, %v; want /run/staging/p2", path, err)
	}
	if _, err := h.StageRestorePoint(ctx, req("rawpoints", "lis-data", map[string]any{"answer": "relative"}), "p2"); err == nil ||
		!strings.Contains(err.Error(), `stage restore point p2 of node "lis-data": plugin "rawpoints": answer breaks the restore-point contract: path "staging/p2" is not absolute`) {
		t.Errorf("relative staged path: %v", err)
	}
	if _, err := h.StageRestorePoint(ctx, req("rawpoints", "lis-data", map[string]any{"answer": "empty"}), "p2"); err == nil || !strings.Contains(err.Error(), "path missing") {
		t.Errorf("empty staged path: %v", err)
	}
	// rawpoints does not implement Release; legacy implements none of them.
	if err := h.ReleaseRestorePoint(ctx, req("rawpoints", "lis-data", nil), "p2", "/run/staging/p2"); err == nil ||
		!strings.Contains(err.Error(), `release restore point p2 of node "lis-data": plugin "rawpoints" does not implement ReleaseRestorePoint`) {
		t.Errorf("release without the call: %v", err)
	}
	if _, err := h.ListRestorePoints(ctx, req("legacy", "lis-data", nil)); err == nil ||
		!strings.Contains(err.Error(), `list restore points of node "lis-data": plugin "legacy" does not implement ListRestorePoints`) {
		t.Errorf("list without the call: %v", err)
	}
	info, err := h.Describe(ctx, "rawpoints")
	if err != nil || !info.ListsRestorePoints {
		t.Errorf("Describe(rawpoints) = %+v, %v; want ListsRestorePoints", info, err)
	}
	if info, err := h.Describe(ctx, "legacy"); err != nil || info.ListsRestorePoints {
		t.Errorf("Describe(legacy) = %+v, %v; want no ListsRestorePoints", info, err)
	}
}
