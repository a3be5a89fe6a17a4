package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

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

// holdForZone keeps ready node i back until its zone opens: a
// certification sent to this run (through the control socket) or recorded
// before a later session.
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
	maxRank := 0
	for _, i := range r.zoneHeld {
		if r.recs[i].State == state.NodePending { // not marked done meanwhile
			maxRank = max(maxRank, r.zone[i])
		}
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
// the nodes of the next zone may start. Every node of the zone must be done
// (succeeded, skipped or marked) and every more trusted zone certified
// first. If this engine is running that run, the certification goes
// through its scheduler, which starts the nodes it held back at once;
// otherwise it is written to the store and they start at the next resume.
func (e *Engine) Certify(ctx context.Context, runID, zone, by, comment string) error {
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("certify zone %q: the name of who certifies is required", zone)
	}
	if strings.TrimSpace(comment) == "" {
		return fmt.Errorf("certify zone %q: a comment saying what was checked is required", zone)
	}
	if handled, err := e.onLive(ctx, runID, func(r *runner) error { return r.certify(zone, by, comment) }); handled {
		return err
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
	recs, err := e.store.Nodes(runID)
	if err != nil {
		return fmt.Errorf("certify: %w", err)
	}
	byID := make(map[string]state.NodeState, len(recs))
	for _, rec := range recs {
		byID[rec.ID] = rec.State
	}
	if _, err := certifyCheck(run, g, func(id string) state.NodeState { return byID[id] }, zone); err != nil {
		return err
	}
	now := e.opts.Now()
	comment = e.red.String(comment)
	run.Certified = append(slices.Clone(run.Certified), state.Certification{Zone: zone, By: by, At: now, Comment: comment})
	run.Updated = now
	ch := state.Change{RunID: runID, Run: &run, Entry: certifiedEntry(now, zone, by, comment)}
	if err := e.store.Apply(context.WithoutCancel(ctx), ch); err != nil {
		return fmt.Errorf("certify zone %q of run %q: %w", zone, runID, err)
	}
	e.log.Info("zone certified", zapRun(runID), zapString("zone", zone), zapString("by", by), zapString("comment", comment))
	e.emit(Event{Time: now, Type: EventZoneCertified, RunID: runID, Zone: zone, Message: fmt.Sprintf("zone %s certified by %s: %s", zone, by, comment)})
	return nil
}

func certifiedEntry(now time.Time, zone, by, comment string) *state.Entry {
	return &state.Entry{Time: now, Type: state.EntryCertified, By: by, Message: comment, Data: map[string]string{"zone": zone}}
}

// certifyCheck returns the rank of zone in run's graph g if it may be
// certified now: a zone of the graph, not certified yet, every more
// trusted zone certified, every node of the zone done (stateOf gives a
// node's state by id).
func certifyCheck(run state.Run, g *graphs.Graph, stateOf func(id string) state.NodeState, zone string) (int, error) {
	rank := g.ZoneRank(zone)
	if rank < 0 {
		ids := make([]string, len(g.Zones))
		for k, z := range g.Zones {
			ids[k] = z.ID
		}
		if len(ids) == 0 {
			return 0, fmt.Errorf("certify zone %q of run %q: %w: the run's graph declares no zones", zone, run.ID, state.ErrZoneNotFound)
		}
		return 0, fmt.Errorf("certify zone %q of run %q: %w (want one of %s)", zone, run.ID, state.ErrZoneNotFound, strings.Join(ids, ", "))
	}
	if run.IsCertified(zone) {
		return 0, fmt.Errorf("certify zone %q of run %q: %w: already certified", zone, run.ID, ErrZoneNotReady)
	}
	for k := 0; k < rank; k++ {
		if !run.IsCertified(g.Zones[k].ID) {
			return 0, fmt.Errorf("certify zone %q of run %q: %w: certify zone %q first (zones are certified most trusted first)", zone, run.ID, ErrZoneNotReady, g.Zones[k].ID)
		}
	}
	var notDone []string
	for _, n := range g.Nodes {
		if st := stateOf(n.ID); n.Zone == zone && !st.Done() {
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
		return 0, fmt.Errorf("certify zone %q of run %q: %w: not done: %s%s", zone, run.ID, ErrZoneNotReady, strings.Join(notDone, ", "), more)
	}
	return rank, nil
}

// certify certifies zone in the live run: persisted before it returns,
// then the nodes held back by it start.
func (r *runner) certify(zone, by, comment string) error {
	rank, err := certifyCheck(r.run, r.g, func(id string) state.NodeState {
		i, _ := r.g.Index(id)
		return r.recs[i].State
	}, zone)
	if err != nil {
		return err
	}
	now := r.e.opts.Now()
	comment = r.e.red.String(comment)
	r.run.Certified = append(slices.Clone(r.run.Certified), state.Certification{Zone: zone, By: by, At: now, Comment: comment})
	r.addRunChange(certifiedEntry(now, zone, by, comment))
	if err := r.flushSync(); err != nil {
		return err
	}
	r.certified[rank] = true
	held := r.zoneHeld
	r.zoneHeld = nil
	for _, i := range held {
		if r.recs[i].State != state.NodePending {
			continue
		}
		if r.zoneOpen(i) {
			r.queue.push(i)
		} else {
			r.zoneHeld = append(r.zoneHeld, i)
		}
	}
	r.log.Info("zone certified", zap.String("zone", zone), zap.String("by", by), zap.String("comment", comment))
	r.e.emit(Event{Time: now, Type: EventZoneCertified, RunID: r.run.ID, Zone: zone, Message: fmt.Sprintf("zone %s certified by %s: %s", zone, by, comment)})
	return nil
}
