package view

import (
	"errors"
	"fmt"
	"time"

	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
)

// Source is what a run is read from: the state file (*state.Store) or the
// control socket of the process that holds it (*control.Client).
type Source interface {
	Run(id string) (state.Run, error)
	Nodes(runID string) ([]state.NodeRecord, error)
	Snapshot(runID string) ([]byte, error)
	Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error
	Verify(runID string) (state.VerifyReport, error)
}

// LoadOptions tune Load. The zero value reads the records and the graph,
// not the journal, at time.Now(), for a run no process is running.
type LoadOptions struct {
	// Now is the time the model is computed at (zero: time.Now()).
	Now time.Time
	// Live says a process is running the run now (the control socket
	// said so). A run recorded as running that is not live was
	// interrupted: its process is gone.
	Live bool
	// Journal reads the whole journal and verifies its hash chain (report,
	// log); status does without.
	Journal bool
	// Graph, when set, gives the run's parsed graph instead of reading and
	// parsing its snapshot: a cache keyed by the run's GraphHash (the
	// dashboard's). The graph it returns is only read.
	Graph func(run state.Run) (*graphs.Graph, error)
}

// Load reads run runID from src and computes its Model. A graph snapshot
// that no longer parses is not an error (Model.GraphErr says why); nor is
// a journal that cannot be read to its end: what could be read is kept,
// and Model.JournalErr and Model.Verify say what is wrong. Errors are for
// a run that cannot be read at all.
func Load(src Source, runID string, opts LoadOptions) (*Model, error) {
	run, err := src.Run(runID)
	if err != nil {
		return nil, err
	}
	nodes, err := src.Nodes(run.ID)
	if err != nil {
		return nil, fmt.Errorf("read nodes of run %q: %w", run.ID, err)
	}
	in := Input{Run: run, Nodes: nodes, Live: opts.Live, Now: opts.Now}
	if opts.Graph != nil {
		in.Graph, in.GraphErr = opts.Graph(run)
	} else {
		in.Graph, in.GraphErr = ReadGraph(src, run)
	}
	if opts.Journal {
		v, err := src.Verify(run.ID)
		if err != nil {
			return nil, fmt.Errorf("verify journal of run %q: %w", run.ID, err)
		}
		in.Verify = &v
		in.Journal, in.JournalErr = readJournal(src, run.ID, v)
	}
	return New(in), nil
}

// readJournal reads every entry of a run's journal that can be read: an
// entry that cannot be decoded is skipped and the reading goes on after
// it, so that a journal broken in the middle still shows its end. The
// error names the first entry that could not be read.
func readJournal(src Source, runID string, v state.VerifyReport) ([]state.Entry, error) {
	var out []state.Entry
	var first error
	after := uint64(0)
	// Each failed read skips at least one sequence number; a journal
	// holds no more than Verify counted plus the gaps Verify stopped at.
	for tries := 0; tries <= v.Entries+maxJournalGap; tries++ {
		err := src.Journal(runID, after, func(e state.Entry) error {
			out = append(out, e)
			after = e.Seq
			return nil
		})
		if err == nil {
			return out, first
		}
		var corrupt *state.CorruptError
		if !errors.As(err, &corrupt) {
			return out, errors.Join(first, fmt.Errorf("read journal of run %q after entry %d: %w", runID, after, err))
		}
		if first == nil {
			first = fmt.Errorf("read journal of run %q: entry %d: %w", runID, after+1, err)
		}
		after++
	}
	return out, first
}

// maxJournalGap bounds how many missing sequence numbers readJournal
// steps over after an unreadable entry.
const maxJournalGap = 1024

// ReadGraph reads and parses the graph snapshot a run was started (or last
// resumed) with. It is the one place a snapshot is parsed: status, report,
// graph --run and resume all read it here. The snapshot is parsed under
// the run's graph file name, so that relative paths (exec scripts, plugin
// binaries) resolve as when the run started.
func ReadGraph(src interface{ Snapshot(string) ([]byte, error) }, run state.Run) (*graphs.Graph, error) {
	data, err := src.Snapshot(run.ID)
	if err != nil {
		return nil, fmt.Errorf("read graph snapshot of run %q: %w", run.ID, err)
	}
	return ParseSnapshot(run, data)
}

// ParseSnapshot parses the stored graph snapshot data of run.
func ParseSnapshot(run state.Run, data []byte) (*graphs.Graph, error) {
	name := run.GraphFile
	if name == "" {
		name = "snapshot of run " + run.ID
	}
	g, err := graphs.Parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("parse graph snapshot of run %q: %w", run.ID, err)
	}
	return g, nil
}
