// Package runsession wires one run of the reprise command outside main: the
// engine over a state file opened for writing (the engine builds its plugin
// host through engine.Options.NewHost), the control socket beside the file
// (status, log and approve from another terminal), and the operator's
// signals: the first SIGINT, SIGTERM or SIGHUP drains the run (nothing new
// starts, running steps finish), the second cancels the running steps.
// Either way the run ends "interrupted" with every finished step recorded.
// Stop is both signals at once, for a caller that must end the run itself
// (its operator's authority withdrawn).
//
// A Session serves one run at a time (Start, Resume or Retry through Do);
// Close ends it. The caller keeps the state file and the logs.
package runsession

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/control"
	"github.com/reprise-si/reprise/engine/state"
)

// Session is a run's engine and its control socket.
type Session struct {
	// Engine runs the session's run; use it through Do.
	Engine *engine.Engine
	srv    *control.Server // nil on etcd
	log    *zap.Logger
	st     state.Backend
	stops  chan string // Stop's reasons, for Do
}

// Start builds the engine over st (opened for writing) with opts and, for
// a state file, serves the control socket beside it (on etcd, readers read
// the cluster directly and there is no socket). log receives the signal
// messages (nil: none).
func Start(st state.Backend, opts engine.Options, log *zap.Logger) (*Session, error) {
	if log == nil {
		log = zap.NewNop()
	}
	eng := engine.New(st, nil, opts)
	s := &Session{Engine: eng, log: log, st: st, stops: make(chan string, 1)}
	if file, ok := st.(*state.Store); ok {
		srv, err := control.Listen(control.SocketPath(file.Path()), control.Backend{Store: file, Actions: eng, Live: eng.LiveRun})
		if err != nil {
			eng.Close()
			return nil, fmt.Errorf("start control socket: %w", err)
		}
		s.srv = srv
	}
	return s, nil
}

// Interrupter is implemented by a state backend whose Apply may wait for
// its storage to come back (etcd without a quorum): Interrupt makes the
// calls waiting now, and later ones that cannot reach the storage, give up
// instead of waiting, so that a signal stops the run.
type Interrupter interface {
	Interrupt()
}

// Signals are the signals Do handles: SIGINT and SIGTERM, and SIGHUP (a
// closed terminal) unless the process ignores it (started under nohup,
// which asked for that; handling it would undo it).
func Signals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// Do runs fn (a Start, Resume or Retry of s.Engine) with the context it
// must use, under the operator's signals: the first drains the engine, the
// second cancels that context. Stop does both. Signals stop being handled
// when fn returns.
func (s *Session) Do(ctx context.Context, fn func(ctx context.Context) (engine.Result, error)) (engine.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, Signals()...)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	drain := func() {
		s.Engine.Drain()
		if in, ok := s.st.(Interrupter); ok {
			in.Interrupt()
		}
	}
	go func() {
		n := 0
		for {
			select {
			case sig := <-sigs:
				n++
				if n == 1 {
					s.log.Warn("signal received: starting nothing new; send it again to cancel running steps", zap.String("signal", sig.String()))
					drain()
				} else {
					s.log.Warn("second signal: cancelling running steps", zap.String("signal", sig.String()))
					cancel()
					return
				}
			case why := <-s.stops:
				s.log.Warn("stopping: starting nothing new and cancelling running steps, as two signals would", zap.String("why", why))
				drain()
				cancel()
				return
			case <-done:
				return
			}
		}
	}()
	return fn(ctx)
}

// Stop ends the run Do runs as two signals would: nothing new starts, the
// running steps are cancelled, and the run ends "interrupted" with every
// finished step recorded, for a resume to go on with. why is logged. Safe
// from any goroutine; called before Do, Do stops its run at once; after
// it, or a second time, it does nothing.
func (s *Session) Stop(why string) {
	select {
	case s.stops <- why:
	default:
	}
}

// Close stops the control socket and closes the plugin host the engine
// built.
func (s *Session) Close() error {
	var err error
	if s.srv != nil {
		err = s.srv.Close()
	}
	if cerr := s.Engine.Close(); err == nil {
		err = cerr
	}
	return err
}
