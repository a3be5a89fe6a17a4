// Package operate applies an operator's action (approve, certify, a
// restore-point decision, retry, mark, a drill's clean-up) to a run of a
// state file, wherever the run stands, for the command line and the
// dashboard alike:
//
//   - no process holds the file: it is opened for writing, the run's state
//     is checked against its journal (and against the anchors, when a
//     source is given) as a resume does, the engine — without a plugin
//     host: an action runs no step — writes the action, and the new journal
//     head is anchored (a line of the JSON log beside the state file, and
//     the anchor destination when given);
//   - a process holds it (a run, a resume, a retry): the action goes
//     through that process's control socket (engine/control), whose engine
//     applies it to the run it is running — which goes on from it — or
//     writes it to the file, after the same check, for another run.
//
// On failure nothing is written: every check comes before the write, and
// the write is one state transaction. A failure to anchor after a write is
// reported beside the result (Outcome.AnchorErr): the action itself is done.
package operate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/anchor"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

// Options say where and as whom an action is written.
type Options struct {
	// StatePath is the state file.
	StatePath string
	// Holder describes this process to another opener of the file while
	// it writes ("reprise mark RUN NODE").
	Holder string
	// Anchor, when set, is where the new journal head is also recorded (a
	// file appended to, or an http(s) webhook: --anchor), and what the
	// journal is checked against before the write.
	Anchor string
	// Logger receives the engine's lines and the anchor line (nil: the
	// JSON log, opened by OpenLog for an action written here).
	Logger *zap.Logger
	// OpenLog opens the JSON log of the state (nil: STATE.log beside the
	// file, appended, 0600).
	OpenLog func(statePath string) (*zap.Logger, func(), error)
	// NoSync skips fsync (tests; REPRISE_UNSAFE_NOSYNC=1).
	NoSync bool
	// Open, when set, opens the state for writing in place of state.Open
	// of the file (the command line's, which also takes etcd URLs: a
	// backend with no lock and no control socket, written directly).
	Open func(path, holder string) (state.Backend, error)
	// Notify, when set, is given the open store of an action written here
	// and returns what hears the engine's events (the graph's notify
	// targets: a zone certified) and what ends their deliveries.
	Notify func(st state.Backend) (onEvent func(engine.Event), done func())
}

// Outcome says where an action went.
type Outcome struct {
	// Socket is set when the action went through the control socket of the
	// process that holds the file.
	Socket bool
	// Live is set when that process is running the run: the action reached
	// its scheduler and the run goes on from it.
	Live bool
	// Holder is the process that holds the file (when Socket).
	Holder state.Holder
	// AnchorErr is a failure to record the new journal head at
	// Options.Anchor after the write (the action itself is done).
	AnchorErr error
}

// ErrNoStateFile is returned when there is no state file at the path.
var ErrNoStateFile = control.ErrNoStateFile

// Do applies fn to run runID of the state file: through the engine over
// the file when no process holds it, else through that process's control
// socket (see the package comment).
func Do(ctx context.Context, o Options, runID string, fn func(ctx context.Context, a control.Actions) error) (Outcome, error) {
	if _, err := os.Lstat(o.StatePath); errors.Is(err, os.ErrNotExist) && !strings.Contains(o.StatePath, "://") {
		return Outcome{}, fmt.Errorf("%s: %w: nothing has run here yet (use --state or REPRISE_STATE to name another)", o.StatePath, ErrNoStateFile)
	}
	open := o.Open
	if open == nil {
		open = func(path, holder string) (state.Backend, error) {
			return state.Open(path, state.Options{Holder: holder, NoSync: o.NoSync, CheckOnFirstWrite: true})
		}
	}
	st, err := open(o.StatePath, o.Holder)
	var locked *state.LockedError
	if errors.As(err, &locked) && !locked.Shared {
		return viaSocket(ctx, o, runID, locked, fn)
	}
	if err != nil {
		return Outcome{}, err
	}
	defer st.Close()
	if _, err := st.Run(runID); err != nil {
		return Outcome{}, fmt.Errorf("%w (list them with `reprise runs`)", err)
	}
	if err := CheckIntegrity(ctx, st, runID, o.Anchor); err != nil {
		return Outcome{}, err
	}
	log := o.Logger
	if log == nil {
		openLog := o.OpenLog
		if openLog == nil {
			openLog = func(statePath string) (*zap.Logger, func(), error) { return OpenLogFile(statePath + ".log") }
		}
		l, closeLog, err := openLog(o.StatePath)
		if err != nil {
			return Outcome{}, err
		}
		defer closeLog()
		log = l
	}
	eopts := engine.Options{Logger: log}
	if o.Notify != nil {
		onEvent, done := o.Notify(st)
		defer done()
		eopts.OnEvent = onEvent
	}
	eng := engine.New(st, nil, eopts)
	defer eng.Close()
	if err := fn(ctx, eng); err != nil {
		return Outcome{}, err
	}
	return Outcome{AnchorErr: WriteAnchor(ctx, st, log, runID, o.Anchor)}, nil
}

// viaSocket sends fn to the process that holds the file.
func viaSocket(ctx context.Context, o Options, runID string, locked *state.LockedError, fn func(context.Context, control.Actions) error) (Outcome, error) {
	c, err := control.Dial(control.SocketPath(o.StatePath))
	if err != nil {
		return Outcome{}, fmt.Errorf("%w; and its control socket does not answer: %v", locked, err)
	}
	out := Outcome{Socket: true, Holder: locked.Holder}
	if live, err := c.Live(); err == nil {
		out.Live = live == runID
	}
	if err := fn(ctx, c); err != nil {
		return out, err
	}
	return out, nil
}

// CheckIntegrity refuses run runID when its stored state does not match
// its journal (control.CheckRun), or its journal does not match the
// anchors at src (when set): the check a resume makes before any write.
func CheckIntegrity(ctx context.Context, st state.Backend, runID, src string) error {
	if err := control.CheckRun(st, runID); err != nil {
		return err
	}
	if src == "" {
		return nil
	}
	as, err := anchor.Read(ctx, src)
	if err != nil {
		return err
	}
	rep, err := anchor.Check(as, runID, anchor.KeyFromEnv(), st.Journal)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("run %s: the journal does not match the anchors in %s: %s; refusing to go on: %w", runID, src, rep.Problem, state.ErrTampered)
	}
	return nil
}

// WriteAnchor records the journal head of run runID outside the state
// file: always as a line of log (the JSON log is an anchor source), and at
// dest when set. It returns dest's failure, if any.
func WriteAnchor(ctx context.Context, st state.Backend, log *zap.Logger, runID, dest string) error {
	seq, hash, err := st.Head(runID)
	if err != nil || seq == 0 {
		return err
	}
	abs := st.Path()
	if !strings.Contains(abs, "://") { // a file, not a state URL (etcd://…)
		abs, _ = filepath.Abs(abs)
	}
	a := anchor.New(abs, runID, seq, hash, anchor.KeyFromEnv())
	log.Info("journal anchor", zap.String("anchor", a.Kind), zap.String("state", a.State),
		zap.String("run", a.Run), zap.Uint64("seq", a.Seq), zap.String("hash", a.Hash), zap.String("mac", a.MAC))
	if dest == "" {
		return nil
	}
	if err := anchor.Write(ctx, dest, a); err != nil {
		log.Warn("journal anchor not written", zap.String("run", runID), zap.Error(err))
		return fmt.Errorf("the journal head of run %s (entry %d) was not anchored: %w", runID, seq, err)
	}
	return nil
}

// OpenLogFile opens the JSON log at path (appended, 0600, no symlink
// followed) and returns a logger writing to it and what closes it.
func OpenLogFile(path string) (*zap.Logger, func(), error) {
	f, err := state.OpenAppend(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc.TimeKey = "time"
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(f), zap.DebugLevel)).With(zap.Int("pid", os.Getpid()))
	return log, func() { _ = log.Sync(); _ = f.Close() }, nil
}

var _ control.Actions = (*engine.Engine)(nil)
