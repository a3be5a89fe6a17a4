package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/reprise-si/reprise/engine/state"
)

// Backend is what the server answers from: the process's open store, and
// the engine for operators' actions and the live run.
type Backend struct {
	Store *state.Store
	// Actions applies operators' actions (the engine; nil: refused).
	Actions Actions
	// Live returns the id of the run in progress ("" if none).
	Live func() string
}

// Server serves a Backend on a unix socket until Close.
type Server struct {
	path string
	ln   net.Listener
	b    Backend
	wg   sync.WaitGroup
	ctx  context.Context
	stop context.CancelFunc
}

// Listen creates the socket at path (mode 0600, removing a stale one) and
// serves b on it in the background.
func Listen(path string, b Backend) (*Server, error) {
	if len(path) >= 104 {
		return nil, fmt.Errorf("control socket %s: path too long for a unix socket (%d bytes, at most 103): use a shorter --state path", path, len(path))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The umask made it 0600; no chmod by name, which would follow a
	// symlink swapped in meanwhile.
	if info, err := os.Lstat(path); err != nil || info.Mode().Type() != os.ModeSocket {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: replaced by something else right after it was created", path)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{path: path, ln: ln, b: b, ctx: ctx, stop: stop}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops serving, waits for the calls in progress and removes the socket.
func (s *Server) Close() error {
	s.stop()
	err := s.ln.Close()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.serve(conn)
		}()
	}
}

func (s *Server) serve(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req Request
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		writeFrame(conn, Frame{Error: "bad request: " + err.Error(), End: true})
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	w := bufio.NewWriter(conn)
	defer w.Flush()
	result, err := s.handle(req, w)
	f := Frame{End: true}
	if err != nil {
		f.Error, f.Code = err.Error(), codeOf(err)
	} else if result != nil {
		raw, merr := json.Marshal(result)
		if merr != nil {
			f.Error = merr.Error()
		} else {
			f.Result = raw
		}
	}
	writeFrame(w, f)
}

func writeFrame(w interface{ Write([]byte) (int, error) }, f Frame) {
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) handle(req Request, w *bufio.Writer) (any, error) {
	st := s.b.Store
	switch req.Op {
	case OpPing:
		return "pong", nil
	case OpLive:
		if s.b.Live == nil {
			return "", nil
		}
		return s.b.Live(), nil
	case OpRuns:
		return st.Runs()
	case OpRun:
		return st.Run(req.Run)
	case OpLatest:
		return st.LatestUnfinished()
	case OpNodes:
		return st.Nodes(req.Run)
	case OpSnapshot:
		return st.Snapshot(req.Run)
	case OpVerify:
		return st.Verify(req.Run)
	case OpJournal:
		err := st.Journal(req.Run, req.AfterSeq, func(e state.Entry) error {
			writeFrame(w, Frame{Entry: &e})
			return nil
		})
		return nil, err
	case OpOperators:
		return st.Operators()
	case OpPutOperator:
		if req.Operator == nil {
			return nil, errors.New("put-operator: no operator record")
		}
		return nil, st.PutOperator(*req.Operator)
	case OpDeleteOperator:
		return nil, st.DeleteOperator(req.By)
	case OpApprove, OpCertify, OpPointDecision, OpRetry, OpMark, OpCleanup:
		return s.act(req)
	default:
		return nil, fmt.Errorf("unknown operation %q", req.Op)
	}
}

// act applies an operator's action. On a run this process is not running
// (the engine writes it to the file), the run's state is first checked
// against its journal, as a resume does: an action is never added to a
// record that was changed outside reprise. The live run was checked when
// it started, and the process has held the file since.
func (s *Server) act(req Request) (any, error) {
	a := s.b.Actions
	if a == nil {
		return nil, fmt.Errorf("%s: operators' actions are not served by this process", req.Op)
	}
	if s.b.Live == nil || s.b.Live() != req.Run {
		if err := CheckRun(s.b.Store, req.Run); err != nil {
			return nil, err
		}
	}
	ctx := s.ctx
	switch req.Op {
	case OpApprove:
		return nil, a.Approve(ctx, req.Run, req.Node, req.By, req.Comment)
	case OpCertify:
		return nil, a.Certify(ctx, req.Run, req.Zone, req.By, req.Comment)
	case OpPointDecision:
		return nil, a.RestorePointDecision(ctx, req.Run, req.Node, req.Action, req.Point, req.By, req.Comment)
	case OpRetry:
		ids, err := a.ResetNodes(ctx, req.Run, req.Node, req.Downstream, req.By)
		if ids == nil {
			ids = []string{}
		}
		return ids, err
	case OpMark:
		return nil, a.Mark(ctx, req.Run, req.Node, req.By, req.Comment)
	default:
		return nil, a.RecordCleanup(ctx, req.Run, req.By, req.Comment)
	}
}

// CheckRun refuses a run whose stored state its journal does not vouch for
// (records, snapshot, chain: state.Store.Verify), with state.ErrTampered.
// Every writer of an operator's action calls it first.
func CheckRun(st interface {
	Verify(runID string) (state.VerifyReport, error)
}, runID string) error {
	rep, err := st.Verify(runID)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("run %s: the state file does not match its journal (%s): %s; refusing to go on: `reprise log --verify %s` says more, restore the state file from a backup: %w",
			runID, rep.Level, rep.Problem, runID, state.ErrTampered)
	}
	return nil
}
