package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNoLeader is returned by Send when no coordinator picked the command
// up: the run has no live leader, and the command was withdrawn (apply it
// to the state directly).
var ErrNoLeader = errors.New("no live coordinator picked the command up")

// ErrCoordinatorLost is returned by Send when the coordinator that took
// the command died (its lease expired) before answering. The command went
// with it: no other coordinator applies it (at most once). Whether it was
// applied before the coordinator died is in the run's journal.
var ErrCoordinatorLost = errors.New("the coordinator that took the command died before answering")

// Command is an operator's command for the coordinator leading a run.
type Command struct {
	Op         string    `json:"op"` // "approve", "certify", "mark", "retry"
	Run        string    `json:"run"`
	Node       string    `json:"node,omitempty"`
	Zone       string    `json:"zone,omitempty"`       // certify
	Downstream bool      `json:"downstream,omitempty"` // retry: the node's descendants too
	By         string    `json:"by"`
	Comment    string    `json:"comment,omitempty"`
	From       string    `json:"from"` // the operator's host and pid
	At         time.Time `json:"at"`
	// Seals is the operator's token sealed for each leading coordinator
	// (by name; see SendOptions.Token): only that coordinator can open it.
	Seals map[string]string `json:"seals,omitempty"`
	// Lease is the sender's lease: an unanswered command and its answer go
	// when the sender does.
	Lease int64 `json:"lease,omitempty"`
	// Set by the coordinator: PickedBy when it takes the command, Done
	// (and Error, or Reset for a retry) once applied.
	PickedBy string   `json:"picked_by,omitempty"`
	Done     bool     `json:"done,omitempty"`
	Error    string   `json:"error,omitempty"`
	Reset    []string `json:"reset,omitempty"` // retry: the nodes put back to pending
}

// The commands a leading coordinator applies: approve a gate (Node), certify
// a zone (Zone; Comment says what was checked), mark a node done (Node;
// Comment is the reason), retry a node (Node, and with Downstream its
// descendants: they run again at once).
const (
	CmdApprove = "approve"
	CmdCertify = "certify"
	CmdMark    = "mark"
	CmdRetry   = "retry"
)

// SendOptions configure SendWith.
type SendOptions struct {
	// Pickup is how long a coordinator has to take the command before it
	// is withdrawn (ErrNoLeader). 0: 5 s.
	Pickup time.Duration
	// Token is the operator's token (reprise operators add), or "". It
	// never travels in clear: it is sealed for each leading coordinator's
	// public key (anonymous NaCl box, bound to this command), so that etcd
	// and its history hold only ciphertexts that the coordinators' keys,
	// kept in their memory, open.
	Token string
}

// Send is SendWith without a token.
func Send(ctx context.Context, cli *clientv3.Client, k Keys, cmd Command, pickup time.Duration) (Command, error) {
	return SendWith(ctx, cli, k, cmd, SendOptions{Pickup: pickup})
}

// SendWith writes cmd for the leader of its run and waits for it to be
// applied. If no coordinator picks it up within o.Pickup, it is withdrawn
// and SendWith returns ErrNoLeader. An error of the command itself (an
// unknown node, a gate not waiting, a token refused …) is returned as the
// coordinator's error; a coordinator that took it and died gives
// ErrCoordinatorLost. The command lives under this client's lease: if the
// sender dies before a coordinator takes it, it goes too.
func SendWith(ctx context.Context, cli *clientv3.Client, k Keys, cmd Command, o SendOptions) (Command, error) {
	if o.Pickup <= 0 {
		o.Pickup = 5 * time.Second
	}
	host, _ := os.Hostname()
	cmd.From, cmd.At = fmt.Sprintf("%s:%d", host, os.Getpid()), time.Now().UTC()
	cmd.PickedBy, cmd.Done, cmd.Error, cmd.Reset, cmd.Seals = "", false, "", nil, nil
	key := fmt.Sprintf("%s%s/%d-%d", k.Commands(), cmd.Run, time.Now().UnixNano(), os.Getpid())
	lease, err := cli.Grant(ctx, 15)
	if err != nil {
		return cmd, fmt.Errorf("send %s of run %s through etcd: %w", cmd.Op, cmd.Run, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer cli.Revoke(context.WithoutCancel(ctx), lease.ID)
	ka, err := cli.KeepAlive(wctx, lease.ID)
	if err != nil {
		return cmd, fmt.Errorf("send %s of run %s through etcd: %w", cmd.Op, cmd.Run, err)
	}
	go func() {
		for range ka { // drained, or the client warns of a full queue
		}
	}()
	cmd.Lease = int64(lease.ID)
	if o.Token != "" {
		if cmd.Seals, err = sealToken(ctx, cli, k, key, cmd, o.Token); err != nil {
			return cmd, fmt.Errorf("send %s of run %s through etcd: %w", cmd.Op, cmd.Run, err)
		}
	}
	val, _ := json.Marshal(cmd)
	resp, err := cli.Put(ctx, key, string(val), clientv3.WithLease(lease.ID))
	if err != nil {
		return cmd, fmt.Errorf("send %s of node %q of run %s through etcd: %w", cmd.Op, cmd.Node, cmd.Run, err)
	}
	rev := resp.Header.Revision
	wch := cli.Watch(wctx, key, clientv3.WithRev(rev+1))
	timer := time.NewTimer(o.Pickup)
	defer timer.Stop()
	pickedBy := ""
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				if ctx.Err() != nil {
					return cmd, ctx.Err()
				}
				return cmd, fmt.Errorf("send %s through etcd: watch the answer: %v", cmd.Op, wr.Err())
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					if pickedBy == "" {
						return cmd, fmt.Errorf("send %s through etcd: the command was deleted before a coordinator took it", cmd.Op)
					}
					return cmd, fmt.Errorf("%w: coordinator %s took %s of run %s and stopped before answering; no other coordinator applies it: see `reprise log %s` whether it was applied, and send it again if not",
						ErrCoordinatorLost, pickedBy, describe(cmd), cmd.Run, cmd.Run)
				}
				var got Command
				if json.Unmarshal(ev.Kv.Value, &got) != nil {
					continue
				}
				if got.PickedBy != "" {
					pickedBy = got.PickedBy
				}
				if got.Done {
					cli.Delete(context.WithoutCancel(ctx), key)
					if got.Error != "" {
						return got, fmt.Errorf("coordinator %s: %s", got.PickedBy, got.Error)
					}
					return got, nil
				}
			}
		case <-timer.C:
			if pickedBy != "" {
				continue // being applied
			}
			// Withdraw it, unless a coordinator took it meanwhile.
			tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
			if err != nil {
				return cmd, fmt.Errorf("withdraw %s: %w", cmd.Op, err)
			}
			if tr.Succeeded {
				return cmd, ErrNoLeader
			}
			pickedBy = "?" // taken meanwhile: its PUT event names who
		case <-ctx.Done():
			return cmd, ctx.Err()
		}
	}
}

// describe names what a command acts on, for messages.
func describe(cmd Command) string {
	switch {
	case cmd.Zone != "":
		return fmt.Sprintf("the %s of zone %s", cmd.Op, cmd.Zone)
	case cmd.Node != "":
		return fmt.Sprintf("the %s of node %s", cmd.Op, cmd.Node)
	}
	return "the " + cmd.Op
}
