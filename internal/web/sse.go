package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// hubs fans a run's new journal entries out to its event streams: one
// reader per run however many viewers watch it, so that 50 wall screens
// cost the run what one does.
type hubs struct {
	s    *Server
	mu   sync.Mutex
	runs map[string]*hub
	ctx  context.Context
	stop context.CancelFunc
}

type hub struct {
	subs map[chan []byte]bool
	seq  uint64
}

func newHubs(s *Server) *hubs {
	ctx, stop := context.WithCancel(context.Background())
	return &hubs{s: s, runs: map[string]*hub{}, ctx: ctx, stop: stop}
}

func (h *hubs) close() { h.stop() }

// subscribe returns a channel of batches of event frames for run, starting after the
// journal's current end, and the function that ends the subscription.
func (h *hubs) subscribe(run string) (chan []byte, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hb := h.runs[run]
	if hb == nil {
		seq, err := h.lastSeq(run)
		if err != nil {
			return nil, nil, err
		}
		hb = &hub{subs: map[chan []byte]bool{}, seq: seq}
		h.runs[run] = hb
		go h.poll(run, hb)
	}
	ch := make(chan []byte, 64)
	hb.subs[ch] = true
	return ch, func() {
		h.mu.Lock()
		delete(hb.subs, ch)
		h.mu.Unlock()
	}, nil
}

func (h *hubs) lastSeq(run string) (uint64, error) {
	r, err := h.s.openState()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if _, err := r.Run(run); err != nil {
		return 0, err
	}
	var seq uint64
	err = r.Journal(run, 0, func(e state.Entry) error { seq = e.Seq; return nil })
	return seq, err
}

// poll reads the run's new journal entries every Poll and sends each to
// every subscriber; it ends when nobody listens any more.
func (h *hubs) poll(run string, hb *hub) {
	t := time.NewTicker(h.s.opts.Poll)
	defer t.Stop()
	// The socket of the process running the run is kept from one poll to
	// the next (one call per poll instead of three); the state file is
	// never kept open, which would keep a resume from taking it.
	var sock stateReader
	defer func() {
		if sock != nil {
			sock.Close()
		}
	}()
	// On etcd, the agents panel changes without a journal entry (an
	// agent registers, drains, goes): a change of their mark is sent as
	// an "agents" event, for the page to redraw.
	agents, _ := h.s.agentsMark(h.ctx, run)
	agentsAt := time.Now()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		if len(hb.subs) == 0 {
			delete(h.runs, run)
			h.mu.Unlock()
			return
		}
		after := hb.seq
		h.mu.Unlock()
		// One batch per poll: a viewer gets one write (and one flush) per
		// poll however many entries came, so that 50 wall screens cost
		// the machine little while a run commits thousands of entries.
		var batch []byte
		last := after
		r := sock
		if r == nil {
			if o, err := h.s.openState(); err == nil {
				r = o
			}
		}
		if r != nil {
			err := r.Journal(run, after, func(e state.Entry) error {
				b, _ := json.Marshal(map[string]any{"seq": e.Seq, "time": e.Time, "type": e.Type, "node": e.NodeID,
					"state": e.State, "by": e.By, "message": e.Message})
				batch = fmt.Appendf(batch, "id: %d\nevent: entry\ndata: %s\n\n", e.Seq, b)
				last = e.Seq
				return nil
			})
			if err == nil && r.Live() != "" {
				sock = r
			} else {
				r.Close()
				sock = nil
			}
		}
		if time.Since(agentsAt) >= agentsEvery {
			agentsAt = time.Now()
			if mark, ok := h.s.agentsMark(h.ctx, run); ok && mark != agents {
				agents = mark
				batch = append(batch, "event: agents\ndata: {}\n\n"...)
			}
		}
		h.mu.Lock()
		hb.seq = last
		if len(batch) > 0 {
			for ch := range hb.subs {
				select {
				case ch <- batch:
				default: // a viewer that does not keep up misses entries, never holds the others
				}
			}
		}
		h.mu.Unlock()
	}
}

// events streams a run's journal entries as Server-Sent Events.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ state.Operator, _ string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, done, err := s.hubs.subscribe(r.PathValue("run"))
	if err != nil {
		apiError(w, statusOf(err), err.Error())
		return
	}
	defer done()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": connected\nretry: 2000\n\n"))
	fl.Flush()
	keep := time.NewTicker(20 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.hubs.ctx.Done():
			return
		case f := <-ch:
			if _, err := w.Write(f); err != nil {
				return
			}
			fl.Flush()
		case <-keep.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
