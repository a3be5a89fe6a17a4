package notify

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/deadline"
)

// Store is what a Watcher reads and journals to: the run's open state file.
type Store interface {
	Run(id string) (state.Run, error)
	Nodes(runID string) ([]state.NodeRecord, error)
	Snapshot(runID string) ([]byte, error)
	Apply(ctx context.Context, changes ...state.Change) error
}

// WatchOptions tunes a Watcher.
type WatchOptions struct {
	Options
	// DeadlineEvery is how often deadlines are computed (default 1m).
	DeadlineEvery time.Duration
	// Grace is how long Close waits for deliveries in progress (default 3s).
	Grace time.Duration
}

// Watcher turns a run's engine events into notifications of the run's
// graph `notify` targets, and watches its deadlines. OnEvent never blocks:
// events go to a bounded queue read by the Watcher's own goroutine, which
// reads the run's graph (its snapshot) on the first event.
type Watcher struct {
	st     Store
	opts   WatchOptions
	events chan engine.Event
	done   chan struct{}
	// outcomes are journaled in batches by their own goroutine (one
	// commit per batch), so that a receiver failing on every message does
	// not compete with the run for the state file's writes.
	outcomes chan state.Change
	flushed  chan struct{}

	mu     sync.Mutex
	closed bool
	n      *Notifier
	g      *graphs.Graph
	run    string
	sent   map[string]deadline.Status
}

// Watch starts a Watcher on st.
func Watch(st Store, opts WatchOptions) *Watcher {
	if opts.DeadlineEvery <= 0 {
		opts.DeadlineEvery = time.Minute
	}
	if opts.Grace <= 0 {
		opts.Grace = 3 * time.Second
	}
	w := &Watcher{st: st, opts: opts, events: make(chan engine.Event, 4096), done: make(chan struct{}),
		outcomes: make(chan state.Change, 1024), flushed: make(chan struct{}), sent: map[string]deadline.Status{}}
	go w.loop()
	go w.journal()
	return w
}

// journalEvery is how long outcomes gather before they are journaled
// together; journalBatch bounds a batch.
const (
	journalEvery = 200 * time.Millisecond
	journalBatch = 256
)

// journal writes the delivery outcomes, a batch per commit, until Close.
func (w *Watcher) journal() {
	defer close(w.flushed)
	for first := range w.outcomes {
		batch := []state.Change{first}
		timer := time.NewTimer(journalEvery)
	gather:
		for len(batch) < journalBatch {
			select {
			case c, ok := <-w.outcomes:
				if !ok {
					break gather
				}
				batch = append(batch, c)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		_ = w.st.Apply(context.Background(), batch...)
	}
}

// OnEvent takes an engine event (Options.OnEvent); it never blocks.
func (w *Watcher) OnEvent(ev engine.Event) {
	switch ev.Type {
	case engine.EventNodeFinished, engine.EventRunFinished, engine.EventRunStarted, engine.EventZoneCertified:
	default:
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	select {
	case w.events <- ev:
	default: // the watcher is behind: this event is not notified
	}
}

// Close stops watching and waits (up to the grace time) for deliveries.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.events)
	w.mu.Unlock()
	<-w.done
	w.n.Close(w.opts.Grace)
	close(w.outcomes) // no delivery goroutine is left to record
	<-w.flushed
}

func (w *Watcher) loop() {
	defer close(w.done)
	tick := time.NewTicker(w.opts.DeadlineEvery)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return
			}
			if w.run == "" && ev.RunID != "" {
				w.start(ev.RunID)
				w.deadlines()
			}
			w.handle(ev)
		case <-tick.C:
			w.deadlines()
		}
	}
}

// start reads the run's graph and starts the notifier on its targets.
func (w *Watcher) start(runID string) {
	w.run = runID
	run, err := w.st.Run(runID)
	if err != nil {
		return
	}
	snap, err := w.st.Snapshot(runID)
	if err != nil || !mayNotify(snap) {
		return
	}
	g, err := graphs.Parse(run.GraphFile, snap)
	if err != nil || len(g.Notify) == 0 {
		return
	}
	w.g = g
	opts := w.opts.Options
	opts.Record = w.record
	w.n = New(g.Notify, opts)
}

// mayNotify reports whether a graph file may have a notify section: most
// have none, and parsing a large graph again costs as much as the run's own
// parse. The key is spelled out in the file unless written with an escape
// (JSON's \u, a YAML double-quoted "\x"), and every escape has a backslash.
func mayNotify(graphFile []byte) bool {
	return bytes.Contains(graphFile, []byte("notify")) || bytes.IndexByte(graphFile, '\\') >= 0
}

func (w *Watcher) record(o Outcome) {
	typ := state.EntryNotified
	if !o.OK {
		typ = state.EntryNotifyFailed
	}
	data := map[string]string{"target": o.Target, "event": string(o.Event)}
	if o.Attempt > 0 {
		data["attempt"] = strconv.Itoa(o.Attempt)
	}
	if o.Final {
		data["final"] = "true"
	}
	if w.opts.Options.Record != nil {
		w.opts.Options.Record(o)
	}
	w.outcomes <- state.Change{RunID: w.run, Entry: &state.Entry{Type: typ, NodeID: o.Node, Time: time.Now().UTC(),
		Message: o.Detail, Data: data}}
}

func (w *Watcher) handle(ev engine.Event) {
	if w.n == nil {
		return
	}
	switch ev.Type {
	case engine.EventNodeFinished:
		switch ev.State {
		case state.NodeWaiting:
			w.send(graphs.NotifyGateWaiting, ev.NodeID, string(ev.State), "waiting for approval: "+ev.Message)
		case state.NodeFailed:
			w.send(graphs.NotifyNodeFailed, ev.NodeID, string(ev.State), ev.Message)
		}
	case engine.EventRunFinished:
		run, err := w.st.Run(ev.RunID)
		status := state.RunStatus("")
		if err == nil {
			status = run.Status
		}
		what := graphs.NotifyRunFinished
		if status == state.RunInterrupted {
			what = graphs.NotifyRunInterrupted
		}
		w.send(what, "", string(status), fmt.Sprintf("run %s %s: %s", ev.RunID, status, ev.Message))
	case engine.EventZoneCertified:
		w.sendZone(ev.Zone, ev.Message)
	}
}

// sendZone tells that zone was certified, and which zone may start now.
func (w *Watcher) sendZone(zone, text string) {
	if k := w.g.ZoneRank(zone); k >= 0 && k+1 < len(w.g.Zones) {
		text += fmt.Sprintf("; zone %s may start at the next resume", w.g.Zones[k+1].ID)
	} else if k >= 0 {
		text += "; it was the last zone"
	}
	m := Message{Event: graphs.NotifyZoneCertified, Time: time.Now().UTC(), Run: w.run, Graph: w.g.Name, Zone: zone,
		State: "certified", Text: text}
	w.n.Send(m)
}

func (w *Watcher) send(ev graphs.NotifyEvent, node, st, text string) {
	m := Message{Event: ev, Time: time.Now().UTC(), Run: w.run, Graph: w.g.Name, Node: node, State: st, Text: text}
	if n, ok := w.g.Node(node); ok {
		m.Title, m.Owner, m.Contact, m.Runbook = n.Title, n.Owner, n.Contact, n.Runbook
	}
	w.n.Send(m)
}

// deadlines notifies nodes that became at risk or late since last time.
func (w *Watcher) deadlines() {
	if w.n == nil {
		return
	}
	wantRisk := false
	for _, t := range w.g.Notify {
		if t.Wants(graphs.NotifyDeadlineAtRisk) || t.Wants(graphs.NotifyDeadlineLate) {
			wantRisk = true
		}
	}
	if !wantRisk {
		return
	}
	run, err := w.st.Run(w.run)
	if err != nil {
		return
	}
	recs, err := w.st.Nodes(w.run)
	if err != nil {
		return
	}
	a := graphs.Analyze(w.g)
	for _, d := range deadline.Compute(w.g, a, recs, deadline.Origin(w.g, run.Created), time.Now()) {
		if d.Status != deadline.AtRisk && d.Status != deadline.Late || w.sent[d.Node] == d.Status {
			continue
		}
		w.sent[d.Node] = d.Status
		ev, text := graphs.NotifyDeadlineAtRisk, fmt.Sprintf("%s is at risk: projected %s, target %s (rto %s)", d.Node,
			d.Projected.UTC().Format(time.RFC3339), d.Target.UTC().Format(time.RFC3339), graphs.FormatDuration(d.RTO))
		if d.Status == deadline.Late {
			ev, text = graphs.NotifyDeadlineLate, fmt.Sprintf("%s is late: target %s (rto %s) passed", d.Node,
				d.Target.UTC().Format(time.RFC3339), graphs.FormatDuration(d.RTO))
		}
		w.send(ev, d.Node, string(d.Status), text)
	}
}
