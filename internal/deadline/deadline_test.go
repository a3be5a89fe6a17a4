package deadline

import (
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

func TestCompute(t *testing.T) {
	src := `version: 1
incident: {detected: "2026-03-01T00:00:00Z"}
defaults: {rto: {vital: 72h, high: 168h}}
nodes:
  - {id: ad, kind: infrastructure, plugin: noop, estimate: 10h, rto: 8h}
  - {id: dns, kind: infrastructure, plugin: noop, estimate: 2h, rto: 48h}
  - {id: dpi, kind: application, plugin: noop, criticality: vital, estimate: 30h, depends_on: [ad]}
  - {id: lab, kind: application, plugin: noop, criticality: high, estimate: 5h, depends_on: [ad]}
  - {id: mail, kind: application, plugin: noop, criticality: low, estimate: 1h}
  - {id: pacs, kind: application, plugin: noop, rto: 20h, estimate: 1h}
`
	g, err := graphs.Parse("g.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a := graphs.Analyze(g)
	origin := Origin(g, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); !origin.Equal(want) {
		t.Fatalf("origin %v, want the incident", origin)
	}
	now := origin.Add(50 * time.Hour)
	recs := []state.NodeRecord{
		// ad: done at +12h, its rto 8h: missed (its effective criticality
		// is vital through dpi, but its own rto wins).
		{ID: "ad", State: state.NodeSucceeded, Ended: origin.Add(12 * time.Hour)},
		{ID: "dns", State: state.NodeSucceeded, Ended: origin.Add(3 * time.Hour)},
		// dpi: running since +40h, 30h estimate: ends at +70h, rto 72h: on track.
		{ID: "dpi", State: state.NodeRunning, Started: origin.Add(40 * time.Hour)},
		// lab pending: ends at +55h, high rto 168h: on track.
		{ID: "lab", State: state.NodePending},
		// pacs pending, rto 20h passed at +50h: late.
		{ID: "pacs", State: state.NodeFailed},
	}
	got := map[string]Deadline{}
	for _, d := range Compute(g, a, recs, origin, now) {
		got[d.Node] = d
	}
	if _, ok := got["mail"]; ok {
		t.Error("mail has no rto but got a deadline")
	}
	for id, want := range map[string]Status{"ad": Missed, "dns": Met, "dpi": OnTrack, "lab": OnTrack, "pacs": Late} {
		if got[id].Status != want {
			t.Errorf("%s: %+v, want %s", id, got[id], want)
		}
	}
	if want := origin.Add(70 * time.Hour); !got["dpi"].Projected.Equal(want) {
		t.Errorf("dpi projected %v, want %v", got["dpi"].Projected, want)
	}
	if got["dpi"].RTO != 72*time.Hour || got["lab"].RTO != 168*time.Hour {
		t.Errorf("default rtos: dpi %v lab %v", got["dpi"].RTO, got["lab"].RTO)
	}
	// Slow dpi: it started at +48h, so its end (+78h) passes its target.
	recs[2].Started = origin.Add(48 * time.Hour)
	for _, d := range Compute(g, a, recs, origin, now) {
		if d.Node == "dpi" && d.Status != AtRisk {
			t.Errorf("slow dpi: %+v, want at-risk", d)
		}
	}
	// Pending dpi behind a pending ad: the chain is projected.
	recs[0] = state.NodeRecord{ID: "ad", State: state.NodePending}
	recs[2] = state.NodeRecord{ID: "dpi", State: state.NodePending}
	for _, d := range Compute(g, a, recs, origin, now) {
		if d.Node == "dpi" && (!d.Projected.Equal(now.Add(40*time.Hour)) || d.Status != AtRisk) {
			t.Errorf("dpi behind ad: %+v, want projected now+40h, at risk", d)
		}
	}
	// Without an incident, deadlines count from the run's start.
	g2, _ := graphs.Parse("g.yaml", []byte("version: 1\nnodes:\n  - {id: a, kind: data, plugin: noop}\n"))
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if o := Origin(g2, start); !o.Equal(start) {
		t.Errorf("origin without incident %v", o)
	}
}
