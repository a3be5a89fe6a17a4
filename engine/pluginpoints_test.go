package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/host"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/engine/step"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/hosttest"
	"github.com/reprise-si/reprise/plugins/sdk"
)

// envVault makes the test binary serve vaultPlugin.
const envVault = "REPRISE_TEST_VAULT"

// vaultPlugin is a backup vault's plugin, built on the SDK: it lists the
// points its node's `with.points` describes, stages a point by copying its
// folder into `with.staging` (or names `with.stage_to`), releases it by
// deleting the copy, and restores by noting the point it was given. Each
// call is appended to `with.calls`.
type vaultPlugin struct{}

var (
	_ sdk.PointLister = vaultPlugin{}
	_ sdk.PointStager = vaultPlugin{}
)

type vaultConfig struct {
	Calls   string `json:"calls"`
	Staging string `json:"staging"`
	StageTo string `json:"stage_to"`
	Points  []struct {
		ID    string `json:"id"`
		Time  string `json:"time"`
		Path  string `json:"path"`
		Size  int64  `json:"size"`
		Stage bool   `json:"stage"`
	} `json:"points"`
}

func vaultCfg(req *sdk.Request) (vaultConfig, error) {
	var c vaultConfig
	err := json.Unmarshal(req.ConfigJSON, &c)
	return c, err
}

func (c vaultConfig) note(format string, args ...any) error {
	f, err := os.OpenFile(c.Calls, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, format+"\n", args...)
	return err
}

func (vaultPlugin) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "vault", Version: "1.0.0", Kinds: []string{"data"}}, nil
}

func (vaultPlugin) ListRestorePoints(_ context.Context, req *sdk.Request) ([]sdk.ListedPoint, error) {
	c, err := vaultCfg(req)
	if err != nil {
		return nil, err
	}
	var out []sdk.ListedPoint
	for _, p := range c.Points {
		t, err := time.Parse(time.RFC3339, p.Time)
		if err != nil {
			return nil, err
		}
		lp := sdk.ListedPoint{ID: p.ID, Time: t, Size: p.Size, Path: p.Path, NeedsStaging: p.Stage}
		if p.Stage {
			lp.Path = ""
		}
		out = append(out, lp)
	}
	return out, c.note("list %d", len(out))
}

func (vaultPlugin) StageRestorePoint(_ context.Context, req *sdk.Request, id string) (string, error) {
	c, err := vaultCfg(req)
	if err != nil {
		return "", err
	}
	if c.StageTo != "" {
		return c.StageTo, c.note("stage %s", id)
	}
	for _, p := range c.Points {
		if p.ID == id {
			dst := filepath.Join(c.Staging, id)
			if err := os.CopyFS(dst, os.DirFS(p.Path)); err != nil {
				return "", err
			}
			return dst, c.note("stage %s", id)
		}
	}
	return "", fmt.Errorf("no point %q", id)
}

func (vaultPlugin) ReleaseRestorePoint(_ context.Context, req *sdk.Request, id, path string) error {
	c, err := vaultCfg(req)
	if err != nil {
		return err
	}
	if c.StageTo == "" {
		if err := os.RemoveAll(path); err != nil {
			return err
		}
	}
	return c.note("release %s", id)
}

func (vaultPlugin) Restore(_ context.Context, req *sdk.Request, s *sdk.Stream) error {
	c, err := vaultCfg(req)
	if err != nil {
		return err
	}
	rp := req.RestorePoint
	if rp == nil {
		return errors.New("no restore point")
	}
	_, statErr := os.Stat(filepath.Join(rp.Path, "records"))
	s.Output("restored_from", rp.ID)
	return c.note("restore %s %s readable=%v", rp.ID, rp.Time.Format(time.RFC3339), statErr == nil)
}

// vaultGraph writes the plugin's launcher in dir and returns a graph
// declaring it as plugin "vault", with src's nodes.
func vaultGraph(t *testing.T, dir, nodes string) *graphs.Graph {
	t.Helper()
	mustFile(t, filepath.Join(dir, "vault"), fmt.Appendf(nil, "#!/bin/sh\n%s=1 exec %q -test.run='^$'\n", envVault, os.Args[0]))
	if err := os.Chmod(filepath.Join(dir, "vault"), 0o755); err != nil {
		t.Fatal(err)
	}
	return enginetest.MustGraph(t, dir, `version: 1
name: vault
incident: {detected: '2026-11-30T03:00:00Z'}
plugins:
  vault: {path: vault}
scanners:
  iocs: {type: ioc, hash_lists: [iocs.txt], names: ['*DECRYPT*']}
  entropy: {type: entropy, threshold: 0.3}
nodes:
`+nodes)
}

// TestPointsFromPlugin runs the real engine with a real plugin process
// that lists its points: they are taken newest first exactly as the
// graph's own (the one after the incident skipped, the encrypted and the
// compromised rejected, verdicts journaled) and the clean one is restored;
// points that need staging are staged for their scan and released after
// it, the chosen one only after its Restore, which could read it.
func TestPointsFromPlugin(t *testing.T) {
	dir := t.TempDir()
	mustCleanFixture(t, dir) // iocs.txt, and points/dpi/p1…p4: clean, compromised, encrypted, clean
	pts := func(node string) string { return filepath.Join(dir, "points", node) }
	mustFile(t, filepath.Join(dir, "cold", "s2", "HOW_TO_DECRYPT.txt"), []byte("pay"))
	mustFile(t, filepath.Join(dir, "cold", "s1", "records", "a.csv"), []byte("clean text\n"))
	g := vaultGraph(t, dir, fmt.Sprintf(`  - id: lis-data
    kind: data
    plugin: vault
    scan: [iocs, entropy]
    restore_points: {from: plugin, roots: [points]}
    with:
      calls: %[1]s/lis.calls
      points:
        - {id: p1, time: '2026-11-28T02:00:00Z', path: %[2]s/p1, size: 4000}
        - {id: p4, time: '2026-11-30T05:00:00Z', path: %[2]s/p4}
        - {id: p3, time: '2026-11-30T02:00:00Z', path: %[2]s/p3}
        - {id: p2, time: '2026-11-29T02:00:00Z', path: %[2]s/p2}
  - id: pacs-data
    kind: data
    plugin: vault
    scan: [iocs, entropy]
    restore_points: {from: plugin, roots: [points, staging]}
    with:
      calls: %[1]s/pacs.calls
      staging: %[1]s/staging
      points:
        - {id: s1, time: '2026-11-28T02:00:00Z', path: %[1]s/cold/s1, stage: true}
        - {id: s2, time: '2026-11-29T02:00:00Z', path: %[1]s/cold/s2, stage: true}
`, dir, pts("dpi")))
	if err := os.MkdirAll(filepath.Join(dir, "staging"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := enginetest.MustStore(t, dir)
	e := realEngine(t, st, g, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	states := enginetest.NodeStates(t, st, res.RunID)
	if states["lis-data"] != state.NodeSucceeded || states["pacs-data"] != state.NodeSucceeded {
		lis, _ := st.Node(res.RunID, "lis-data")
		pacs, _ := st.Node(res.RunID, "pacs-data")
		t.Fatalf("states %v: lis %q, pacs %q", states, lis.LastError, pacs.LastError)
	}
	var trail []string
	for _, en := range journal(t, st, res.RunID, "lis-data", state.EntryPointSkipped, state.EntryScanned, state.EntryPointChosen) {
		trail = append(trail, fmt.Sprintf("%s %s %s %s", en.Type, en.Data["point"], en.Data["verdict"], en.Data["size"]))
	}
	want := []string{"point-skipped p4  ", "point-scanned p3 encrypted ", "point-scanned p2 compromised ", "point-scanned p1 clean 4000", "point-chosen p1 clean "}
	if strings.Join(trail, "|") != strings.Join(want, "|") {
		t.Errorf("lis-data journal:\n%s\nwant\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	lis, _ := st.Node(res.RunID, "lis-data")
	if lis.Outputs["restore_point"] != "p1" || lis.Outputs["restored_from"] != "p1" || lis.Outputs["data_lost"] != "49h0m" {
		t.Errorf("lis-data outputs %v", lis.Outputs)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "lis.calls")); string(got) != "list 4\nrestore p1 2026-11-28T02:00:00Z readable=true\n" {
		t.Errorf("lis-data calls:\n%s", got)
	}
	// s2 (newest) staged, found encrypted, released; s1 staged, clean,
	// restored while still staged, released after.
	if got, _ := os.ReadFile(filepath.Join(dir, "pacs.calls")); string(got) != "list 2\nstage s2\nrelease s2\nstage s1\nrestore s1 2026-11-28T02:00:00Z readable=true\nrelease s1\n" {
		t.Errorf("pacs-data calls:\n%s", got)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "staging")); len(left) != 0 {
		t.Errorf("staging holds %d entries after the run, want none", len(left))
	}
	chosen := journal(t, st, res.RunID, "pacs-data", state.EntryPointChosen)
	if len(chosen) != 1 || chosen[0].Data["point"] != "s1" || chosen[0].Data["path"] != filepath.Join(dir, "staging", "s1") {
		t.Errorf("pacs-data chosen %+v", chosen)
	}
	if rep, err := st.Verify(res.RunID); err != nil || !rep.OK {
		t.Errorf("journal verify: %+v %v", rep, err)
	}
}

// TestPointsFromPluginHostile: a plugin that names a folder outside the
// node's roots (directly, through a symbolic link, or as a staged point),
// a folder that does not exist, or a point dated in the future fails its
// node with an error saying so; nothing is scanned or restored, and a
// staged point is released.
func TestPointsFromPluginHostile(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	mustFile(t, filepath.Join(dir, "iocs.txt"), []byte("\n"))
	mustFile(t, filepath.Join(dir, "vault-store", "ok", "records", "a.csv"), []byte("x\n"))
	mustFile(t, filepath.Join(outside, "records", "a.csv"), []byte("x\n"))
	if err := os.Symlink(outside, filepath.Join(dir, "vault-store", "link")); err != nil {
		t.Fatal(err)
	}
	node := func(id, extra, points string) string {
		return fmt.Sprintf(`  - id: %s
    kind: data
    plugin: vault
    scan: [iocs]
    restore_points: {from: plugin, roots: [vault-store]}
    with: {calls: %s/%s.calls%s, points: [%s]}
`, id, dir, id, extra, points)
	}
	store := filepath.Join(dir, "vault-store")
	g := vaultGraph(t, dir, node("outside", "", fmt.Sprintf("{id: ok, time: '2026-11-28T02:00:00Z', path: %s/ok}, {id: evil, time: '2026-11-28T01:00:00Z', path: %s}", store, outside))+
		node("dotdot", "", fmt.Sprintf("{id: up, time: '2026-11-28T02:00:00Z', path: %s/ok/../../..}", store))+
		node("symlink", "", fmt.Sprintf("{id: link, time: '2026-11-28T02:00:00Z', path: %s/link}", store))+
		node("missing", "", fmt.Sprintf("{id: gone, time: '2026-11-28T02:00:00Z', path: %s/gone}", store))+
		node("root", "", fmt.Sprintf("{id: all, time: '2026-11-28T02:00:00Z', path: %s}", store))+
		node("future", "", fmt.Sprintf("{id: later, time: '2099-01-01T00:00:00Z', path: %s/ok}", store))+
		node("staged", ", stage_to: "+outside, "{id: s1, time: '2026-11-28T02:00:00Z', path: x, stage: true}"))
	st := enginetest.MustStore(t, dir)
	e := realEngine(t, st, g, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	res, err := e.Start(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for node, want := range map[string]string{
		"outside": fmt.Sprintf(`list restore points of node "outside": plugin "vault": point "evil": path %q is outside the node's restore_points.roots (vault-store)`, outside),
		"dotdot":  `is outside the node's restore_points.roots (vault-store)`,
		"symlink": fmt.Sprintf(`point "link": path %q (it resolves to %q) is outside the node's restore_points.roots (vault-store)`, store+"/link", outside),
		"missing": fmt.Sprintf(`point "gone": path %q cannot be read: no such file or directory`, store+"/gone"),
		"root":    fmt.Sprintf(`point "all": path %q is outside the node's restore_points.roots`, store),
		"future":  `point "later": time 2099-01-01T00:00:00Z is in the future`,
		"staged":  fmt.Sprintf(`stage restore point s1 of node "staged": plugin "vault": path %q is outside the node's restore_points.roots (vault-store)`, outside),
	} {
		rec, err := st.Node(res.RunID, node)
		if err != nil || rec.State != state.NodeFailed || !strings.Contains(rec.LastError, want) {
			t.Errorf("node %s: %s %q (%v); want failed with\n %s", node, rec.State, rec.LastError, err, want)
		}
		if en := journal(t, st, res.RunID, node, state.EntryScanned, state.EntryPointChosen); len(en) != 0 {
			t.Errorf("node %s: %d points scanned or chosen, want none", node, len(en))
		}
		calls, _ := os.ReadFile(filepath.Join(dir, node+".calls"))
		if strings.Contains(string(calls), "restore") && !strings.Contains(string(calls), "release") {
			t.Errorf("node %s restored: %s", node, calls)
		}
	}
	if calls, _ := os.ReadFile(filepath.Join(dir, "staged.calls")); string(calls) != "list 1\nstage s1\nrelease s1\n" {
		t.Errorf("staged calls:\n%s", calls)
	}
}

// TestPointsFromPluginRefused: `restore_points: {from: plugin}` on a
// plugin that does not list points is refused before anything runs, and
// by validation, naming the node and the plugin.
func TestPointsFromPluginRefused(t *testing.T) {
	dir := t.TempDir()
	mustFile(t, filepath.Join(dir, "iocs.txt"), []byte("\n"))
	g := vaultGraph(t, dir, `  - id: lab-data
    kind: data
    plugin: exec
    scan: [iocs]
    restore_points: {from: plugin, roots: [backups]}
    with: {restore: [/bin/true]}
`)
	st := enginetest.MustStore(t, dir)
	e := realEngine(t, st, g, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	want := `node "lab-data": restore_points: {from: plugin}: plugin "exec" does not list restore points (it does not implement ListRestorePoints`
	_, err := e.Start(context.Background(), g)
	if !errors.Is(err, step.ErrNoPointList) || !strings.Contains(err.Error(), filepath.Base(g.File)+":14:21: "+want) {
		t.Fatalf("Start = %v; want ErrNoPointList with\n %s", err, want)
	}
	if runs, _ := st.Runs(); len(runs) != 0 {
		t.Errorf("%d runs recorded, want none", len(runs))
	}
	h := host.New(host.Options{Plugins: g.Plugins, GraphDir: g.Dir, BuiltinCommand: hosttest.BuiltinCommand})
	defer h.Close()
	probs := host.ValidateNodes(context.Background(), h, g)
	if len(probs) != 1 || probs[0].Field != "restore_points" || probs[0].NodeID != "lab-data" || !strings.Contains(probs[0].Message, `plugin "exec" does not list restore points`) {
		t.Errorf("ValidateNodes = %+v", probs)
	}
}
