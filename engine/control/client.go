package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reprise-si/reprise/engine/state"
)

// Client calls the control socket of a running reprise process. It has the
// read methods of state.Store, so that commands can read from either. Each
// call opens its own connection; a Client is safe for concurrent use.
type Client struct {
	path    string
	timeout time.Duration
	wantUID int // the uid the serving process must run as
}

// Dial returns a Client for the socket at path after checking that a server
// answers there. Every connection checks the server's credentials
// (SO_PEERCRED): it must run as the user who owns the state file the
// socket belongs to (SocketPath), else the answer is not trusted and the
// call fails with ErrUntrustedServer, so that a fake server planted in a
// shared folder cannot pretend to have received an approval.
func Dial(path string) (*Client, error) {
	c := &Client{path: path, timeout: 30 * time.Second, wantUID: ownerOf(strings.TrimSuffix(path, socketSuffix))}
	var pong string
	if err := c.call(Request{Op: OpPing}, &pong, nil); err != nil {
		if errors.Is(err, ErrUntrustedServer) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrNoServer, err)
	}
	return c, nil
}

// ownerOf is the uid owning the file at path, or this process's uid when
// it cannot be read.
func ownerOf(path string) int {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return os.Geteuid()
	}
	return int(st.Uid)
}

// checkPeer fails with ErrUntrustedServer unless the process at the other
// end of conn runs as uid want.
func checkPeer(conn net.Conn, path string, want int) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("control socket %s: not a unix socket: %w", path, ErrUntrustedServer)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if cerr != nil {
		return fmt.Errorf("control socket %s: read the server's credentials: %v: %w", path, cerr, ErrUntrustedServer)
	}
	if int(cred.Uid) != want {
		return fmt.Errorf("control socket %s is served by pid %d running as uid %d, but the state file belongs to uid %d: %w",
			path, cred.Pid, cred.Uid, want, ErrUntrustedServer)
	}
	return nil
}

func (c *Client) call(req Request, out any, onEntry func(state.Entry) error) error {
	conn, err := net.DialTimeout("unix", c.path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer conn.Close()
	if err := checkPeer(conn, c.path, c.wantUID); err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		_ = conn.SetDeadline(time.Now().Add(c.timeout))
		var f Frame
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("control socket %s: read answer to %s: %w", c.path, req.Op, err)
		}
		if f.Entry != nil && onEntry != nil {
			if err := onEntry(*f.Entry); err != nil {
				return err
			}
		}
		if !f.End {
			continue
		}
		if f.Error != "" {
			return &RemoteError{Msg: f.Error, sentinel: codes[f.Code]}
		}
		if out != nil && len(f.Result) > 0 {
			if err := json.Unmarshal(f.Result, out); err != nil {
				return fmt.Errorf("control socket %s: decode answer to %s: %w", c.path, req.Op, err)
			}
		}
		return nil
	}
}

// Runs returns every run of the state file, newest first.
func (c *Client) Runs() ([]state.Run, error) {
	var runs []state.Run
	err := c.call(Request{Op: OpRuns}, &runs, nil)
	return runs, err
}

// Run returns one run.
func (c *Client) Run(id string) (state.Run, error) {
	var run state.Run
	err := c.call(Request{Op: OpRun, Run: id}, &run, nil)
	return run, err
}

// LatestUnfinished returns the newest run that may be resumed.
func (c *Client) LatestUnfinished() (state.Run, error) {
	var run state.Run
	err := c.call(Request{Op: OpLatest}, &run, nil)
	return run, err
}

// Nodes returns the node records of a run.
func (c *Client) Nodes(runID string) ([]state.NodeRecord, error) {
	var nodes []state.NodeRecord
	err := c.call(Request{Op: OpNodes, Run: runID}, &nodes, nil)
	return nodes, err
}

// Snapshot returns a run's graph snapshot.
func (c *Client) Snapshot(runID string) ([]byte, error) {
	var snap []byte
	err := c.call(Request{Op: OpSnapshot, Run: runID}, &snap, nil)
	return snap, err
}

// Journal calls fn for each journal entry of a run after afterSeq, in order.
func (c *Client) Journal(runID string, afterSeq uint64, fn func(state.Entry) error) error {
	return c.call(Request{Op: OpJournal, Run: runID, AfterSeq: afterSeq}, nil, fn)
}

// Verify checks a run's journal chain in the serving process.
func (c *Client) Verify(runID string) (state.VerifyReport, error) {
	var rep state.VerifyReport
	err := c.call(Request{Op: OpVerify, Run: runID}, &rep, nil)
	return rep, err
}

// Live returns the id of the run the serving process is running ("" if none).
func (c *Client) Live() (string, error) {
	var id string
	err := c.call(Request{Op: OpLive}, &id, nil)
	return id, err
}

var _ Actions = (*Client)(nil)

// Approve approves a waiting gate through the serving process.
func (c *Client) Approve(ctx context.Context, runID, nodeID, by, comment string) error {
	return c.callCtx(ctx, Request{Op: OpApprove, Run: runID, Node: nodeID, By: by, Comment: comment}, nil)
}

// Certify certifies a trust zone through the serving process.
func (c *Client) Certify(ctx context.Context, runID, zone, by, comment string) error {
	return c.callCtx(ctx, Request{Op: OpCertify, Run: runID, Zone: zone, By: by, Comment: comment}, nil)
}

// RestorePointDecision records a decision on a node's restore point
// through the serving process.
func (c *Client) RestorePointDecision(ctx context.Context, runID, nodeID, action, pointID, by, reason string) error {
	return c.callCtx(ctx, Request{Op: OpPointDecision, Run: runID, Node: nodeID, Action: action, Point: pointID, By: by, Comment: reason}, nil)
}

// ResetNodes puts a node (and with downstream its descendants) back to
// pending through the serving process, and returns the ids reset.
func (c *Client) ResetNodes(ctx context.Context, runID, nodeID string, downstream bool, by string) ([]string, error) {
	var ids []string
	err := c.callCtx(ctx, Request{Op: OpRetry, Run: runID, Node: nodeID, Downstream: downstream, By: by}, &ids)
	return ids, err
}

// Mark marks a node done through the serving process.
func (c *Client) Mark(ctx context.Context, runID, nodeID, by, reason string) error {
	return c.callCtx(ctx, Request{Op: OpMark, Run: runID, Node: nodeID, By: by, Comment: reason}, nil)
}

// RecordCleanup records a drill's clean-up through the serving process.
func (c *Client) RecordCleanup(ctx context.Context, runID, by, note string) error {
	return c.callCtx(ctx, Request{Op: OpCleanup, Run: runID, By: by, Comment: note}, nil)
}

// callCtx is call bounded by ctx as well.
func (c *Client) callCtx(ctx context.Context, req Request, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cc := *c
	if d, ok := ctx.Deadline(); ok && time.Until(d) < cc.timeout {
		cc.timeout = max(time.Until(d), time.Millisecond)
	}
	return cc.call(req, out, nil)
}

// Operators returns the dashboard's operators.
func (c *Client) Operators() ([]state.Operator, error) {
	var ops []state.Operator
	err := c.call(Request{Op: OpOperators}, &ops, nil)
	return ops, err
}

// PutOperator stores an operator's record through the serving process.
func (c *Client) PutOperator(op state.Operator) error {
	return c.call(Request{Op: OpPutOperator, Operator: &op}, nil, nil)
}

// DeleteOperator removes an operator through the serving process.
func (c *Client) DeleteOperator(name string) error {
	return c.call(Request{Op: OpDeleteOperator, By: name}, nil, nil)
}

// ErrNoServer is returned by Dial when nothing answers on the socket.
var ErrNoServer = errors.New("no reprise process serves this state file")

// ErrUntrustedServer is returned when the process serving the socket does
// not run as the owner of the state file: its answers are not trusted.
var ErrUntrustedServer = errors.New("control socket served by another user; its answer is not trusted (someone may have replaced the socket)")
