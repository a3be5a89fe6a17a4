package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/internal/etcdconn"
)

// logPath is the JSON log file beside a state file.
// On etcd it is a file of the working directory (etcdLogPath).
func logPath(statePath string) string {
	if etcdconn.IsURL(statePath) {
		return etcdLogPath(statePath)
	}
	return statePath + ".log"
}

// openLog opens the JSON log file beside the state file (0600, appended)
// and returns a logger writing to it; close flushes and closes it.
func openLog(statePath string) (*zap.Logger, func(), error) {
	path := logPath(statePath)
	f, err := state.OpenAppend(path) // no symlink followed, no hard link taken
	if err != nil {
		return nil, nil, fmt.Errorf("open log file: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc.TimeKey = "time"
	// Lines are written in batches (a run of 10,000 short steps logs 20,000
	// lines: one write each cost more than the rest of the line), at the
	// latest logFlushEvery after they were logged; a warning or an error is
	// written at once, with what came before it, and so is everything when
	// the log is closed.
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(f), Size: 256 << 10, FlushInterval: logFlushEvery}
	core := newUniqueKeysCore(&syncOnWarnCore{Core: zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, zap.DebugLevel), ws: ws})
	log := zap.New(core).With(zap.Int("pid", os.Getpid()))
	return log, func() { _ = log.Sync(); _ = ws.Stop(); _ = f.Close() }, nil
}

// logFlushEvery is how long an info or debug line may wait in the log's
// buffer: what a crash (a kill -9, a power cut) can lose of them. The state
// file's journal, durable at each transition, is the record of a run.
const logFlushEvery = 200 * time.Millisecond

// syncOnWarnCore writes out the buffered log after each line at warning
// level or above.
type syncOnWarnCore struct {
	zapcore.Core
	ws zapcore.WriteSyncer
}

func (c *syncOnWarnCore) With(fields []zapcore.Field) zapcore.Core {
	return &syncOnWarnCore{Core: c.Core.With(fields), ws: c.ws}
}

func (c *syncOnWarnCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *syncOnWarnCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(e, fields)
	if e.Level >= zapcore.WarnLevel {
		if serr := c.ws.Sync(); err == nil {
			err = serr
		}
	}
	return err
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// progressTo is the one place where a run's progress reaches stderr (w):
// the live display of progress.go, bars when w is a terminal, one plain
// line per event otherwise; quiet shows nothing. done flushes the display.
func progressTo(w io.Writer, quiet bool) (onEvent func(engine.Event), done func()) {
	if quiet {
		return nil, func() {}
	}
	f, ok := w.(*os.File)
	p := newProgress(w, ok && isTerminal(f))
	return p.Event, p.Close
}

// withLiveRun adds a run field with the id of the run in progress to every
// line of l that has none (lines from the plugin host, which does not know
// the run).
func withLiveRun(l *zap.Logger, live func() string) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return &liveRunCore{Core: c, live: live} }))
}

type liveRunCore struct {
	zapcore.Core
	live func() string
	has  bool
}

func (c *liveRunCore) With(fields []zapcore.Field) zapcore.Core {
	has := c.has
	for _, f := range fields {
		if f.Key == "run" {
			has = true
		}
	}
	return &liveRunCore{Core: c.Core.With(fields), live: c.live, has: has}
}

func (c *liveRunCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *liveRunCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	has := c.has
	for _, f := range fields {
		has = has || f.Key == "run"
	}
	if !has {
		if id := c.live(); id != "" {
			fields = append(fields, zap.String("run", id))
		}
	}
	return c.Core.Write(e, fields)
}
