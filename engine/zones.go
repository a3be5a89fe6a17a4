package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
)

// ErrZoneNotReady is returned by Certify when the zone's nodes are not all
// done, or a more trusted zone is not certified yet.
var ErrZoneNotReady = errors.New("zone not ready for certification")

// initZones reads each node's zone rank and the run's certifications.
func (r *runner) initZones() {
	if len(r.g.Zones) == 0 {
		return
	}
	r.zone = make([]int, len(r.g.Nodes))
	for i, n := range r.g.Nodes {
		r.zone[i] = max(r.g.ZoneRank(n.Zone), 0)
	}
	r.certified = make([]bool, len(r.g.Zones))
	for k, z := range r.g.Zones {
		r.certified[k] = r.run.IsCertified(z.ID)
	}
}

// zoneOpen reports whether node i may start: every zone more trusted than
// its own is certified.
func (r *runner) zoneOpen(i int) bool {
	if r.zone == nil {
		return true
	}
	for k := 0; k < r.zone[i]; k++ {
		if !r.certified[k] {
			return false
		}
	}
	return true
}

// holdForZone keeps ready node i back until its zone opens (a later run
// session, after reprise certify).
func (r *runner) holdForZone(i int) {
	r.zoneHeld = append(r.zoneHeld, i)
	n := r.g.Nodes[i]
	r.log.Info("node held: a more trusted zone is not certified", zap.String("node", n.ID), zap.String("zone", n.Zone),
		zap.String("waiting_for", r.firstUncertified()))
}

// firstUncertified is the most trusted zone not certified ("" if none).
func (r *runner) firstUncertified() string {
	for k, ok := range r.certified {
		if !ok {
			return r.g.Zones[k].ID
		}
	}
	return ""
}

// uncertified lists the zones not certified that hold nodes back.
func (r *runner) uncertified() []string {
	if len(r.zoneHeld) == 0 {
		return nil
	}
	maxRank := 0
	for _, i := range r.zoneHeld {
		maxRank = max(maxRank, r.zone[i])
	}
	var out []string
	for k := 0; k < maxRank; k++ {
		if !r.certified[k] {
			out = append(out, r.g.Zones[k].ID)
		}
	}
	return out
}

// Certify records that trust zone zone of run runID is certified clean, by
// whom and with what comment: journaled and kept on the run, after which
// the nodes of the next zone may start (at the next resume). Every node of
// the zone must be done (succeeded, skipped or marked) and every more
// trusted zone certified first. The run must not be running in this engine.
func (e *Engine) Certify(ctx context.Context, runID, zone, by, comment string) error {
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("certify zone %q: the name of who certifies is required", zone)
	}
	if strings.TrimSpace(comment) == "" {
		return fmt.Errorf("certify zone %q: a comment saying what was checked is required", zone)
	}
	if live := e.LiveRun(); live == runID {
		return fmt.Errorf("certify zone %q of run %q: %w", zone, runID, ErrBusy)
	}
	run, err := e.store.Run(runID)
	if err != nil {
		return fmt.Errorf("certify: %w", err)
	}
	if err := refuseCleanedUp("certify zone "+fmt.Sprintf("%q", zone)+" of", run); err != nil {
		return err
	}
	g, err := e.snapshotGraph(run)
	if err != nil {
		return err
	}
	rank := g.ZoneRank(zone)
	if rank < 0 {
		ids := make([]string, len(g.Zones))
		for k, z := range g.Zones {
			ids[k] = z.ID
		}
		if len(ids) == 0 {
			return fmt.Errorf("certify zone %q of run %q: the run's graph declares no zones", zone, runID)
		}
		return fmt.Errorf("certify zone %q of run %q: unknown zone (want one of %s)", zone, runID, strings.Join(ids, ", "))
	}
	if run.IsCertified(zone) {
		return fmt.Errorf("certify zone %q of run %q: already certified", zone, runID)
	}
	for k := 0; k < rank; k++ {
		if !run.IsCertified(g.Zones[k].ID) {
			return fmt.Errorf("certify zone %q of run %q: %w: certify zone %q first (zones are certified most trusted first)", zone, runID, ErrZoneNotReady, g.Zones[k].ID)
		}
	}
	recs, err := e.store.Nodes(runID)
	if err != nil {
		return fmt.Errorf("certify: %w", err)
	}
	byID := make(map[string]state.NodeState, len(recs))
	for _, rec := range recs {
		byID[rec.ID] = rec.State
	}
	var notDone []string
	for _, n := range g.Nodes {
		if n.Zone == zone && !byID[n.ID].Done() {
			st := byID[n.ID]
			if st == "" {
				st = state.NodePending
			}
			notDone = append(notDone, fmt.Sprintf("%s (%s)", n.ID, st))
		}
	}
	if len(notDone) > 0 {
		more := ""
		if len(notDone) > 10 {
			more = fmt.Sprintf(" and %d more", len(notDone)-10)
			notDone = notDone[:10]
		}
		return fmt.Errorf("certify zone %q of run %q: %w: not done: %s%s", zone, runID, ErrZoneNotReady, strings.Join(notDone, ", "), more)
	}
	now := e.opts.Now()
	comment = e.red.String(comment)
	run.Certified = append(run.Certified, state.Certification{Zone: zone, By: by, At: now, Comment: comment})
	run.Updated = now
	ch := state.Change{RunID: runID, Run: &run, Entry: &state.Entry{Time: now, Type: state.EntryCertified,
		By: by, Message: comment, Data: map[string]string{"zone": zone}}}
	if err := e.store.Apply(context.WithoutCancel(ctx), ch); err != nil {
		return fmt.Errorf("certify zone %q of run %q: %w", zone, runID, err)
	}
	e.log.Info("zone certified", zapRun(runID), zapString("zone", zone), zapString("by", by), zapString("comment", comment))
	e.emit(Event{Time: now, Type: EventZoneCertified, RunID: runID, Zone: zone, Message: fmt.Sprintf("zone %s certified by %s: %s", zone, by, comment)})
	return nil
}
