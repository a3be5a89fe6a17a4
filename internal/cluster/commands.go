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
	"go.uber.org/zap"
)

// ErrNoLeader is returned by Send when no coordinator picked the command
// up: the run has no live leader, and the command was withdrawn (apply it
// to the state directly).
var ErrNoLeader = errors.New("no live coordinator picked the command up")

// Command is an operator's command for the coordinator leading a run.
type Command struct {
	Op      string    `json:"op"` // "approve", "certify", "mark"
	Run     string    `json:"run"`
	Node    string    `json:"node,omitempty"`
	Zone    string    `json:"zone,omitempty"` // certify
	By      string    `json:"by"`
	Comment string    `json:"comment,omitempty"`
	From    string    `json:"from"` // the operator's host and pid
	At      time.Time `json:"at"`
	// Set by the coordinator: PickedBy when it takes the command, Done
	// (and Error) once applied.
	PickedBy string `json:"picked_by,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Error    string `json:"error,omitempty"`
}

// The commands a leading coordinator applies: approve a gate (Node), certify
// a zone (Zone; Comment says what was checked), mark a node done (Node;
// Comment is the reason).
const (
	CmdApprove = "approve"
	CmdCertify = "certify"
	CmdMark    = "mark"
)

// Send writes cmd for the leader of its run and waits for it to be
// applied. If no coordinator picks it up within pickup, it is withdrawn and
// Send returns ErrNoLeader. An error of the command itself (an unknown
// node, a gate not waiting …) is returned as the coordinator's error.
func Send(ctx context.Context, cli *clientv3.Client, k Keys, cmd Command, pickup time.Duration) (Command, error) {
	host, _ := os.Hostname()
	cmd.From, cmd.At = fmt.Sprintf("%s:%d", host, os.Getpid()), time.Now().UTC()
	cmd.PickedBy, cmd.Done, cmd.Error = "", false, ""
	key := fmt.Sprintf("%s%s/%d-%d", k.Commands(), cmd.Run, time.Now().UnixNano(), os.Getpid())
	val, _ := json.Marshal(cmd)
	resp, err := cli.Put(ctx, key, string(val))
	if err != nil {
		return cmd, fmt.Errorf("send %s of node %q of run %s through etcd: %w", cmd.Op, cmd.Node, cmd.Run, err)
	}
	rev := resp.Header.Revision
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, key, clientv3.WithRev(rev+1))
	timer := time.NewTimer(pickup)
	defer timer.Stop()
	picked := false
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return cmd, fmt.Errorf("send %s through etcd: watch the answer: %v", cmd.Op, wr.Err())
			}
			for _, ev := range wr.Events {
				if ev.Type != mvccpb.PUT {
					continue
				}
				var got Command
				if json.Unmarshal(ev.Kv.Value, &got) != nil {
					continue
				}
				picked = got.PickedBy != ""
				if got.Done {
					cli.Delete(context.WithoutCancel(ctx), key)
					if got.Error != "" {
						return got, fmt.Errorf("coordinator %s: %s", got.PickedBy, got.Error)
					}
					return got, nil
				}
			}
		case <-timer.C:
			if picked {
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
			picked = true
		case <-ctx.Done():
			return cmd, ctx.Err()
		}
	}
}

// ServeCommands applies, through apply, the operators' commands for the
// run live returns, until ctx is done: each is taken with a
// compare-and-swap (so that exactly one coordinator applies it), applied,
// and answered.
func ServeCommands(ctx context.Context, cli *clientv3.Client, k Keys, name string, live func() string, apply func(context.Context, Command) error, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	handle := func(kv *mvccpb.KeyValue) {
		var cmd Command
		if json.Unmarshal(kv.Value, &cmd) != nil || cmd.PickedBy != "" || cmd.Done || cmd.Run == "" || cmd.Run != live() {
			return
		}
		cmd.PickedBy = name
		val, _ := json.Marshal(cmd)
		tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
			Then(clientv3.OpPut(string(kv.Key), string(val))).Commit()
		if err != nil || !tr.Succeeded {
			return
		}
		err = apply(ctx, cmd)
		cmd.Done = true
		if err != nil {
			cmd.Error = err.Error()
		}
		log.Info("operator's command applied", zap.String("op", cmd.Op), zap.String("run", cmd.Run), zap.String("node", cmd.Node),
			zap.String("by", cmd.By), zap.String("from", cmd.From), zap.String("error", cmd.Error))
		val, _ = json.Marshal(cmd)
		cli.Put(context.WithoutCancel(ctx), string(kv.Key), string(val))
	}
	for ctx.Err() == nil {
		resp, err := cli.Get(ctx, k.Commands(), clientv3.WithPrefix())
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for _, kv := range resp.Kvs {
			handle(kv)
		}
		wch := cli.Watch(ctx, k.Commands(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.PUT {
					handle(ev.Kv)
				}
			}
		}
		sleep(ctx, 200*time.Millisecond)
	}
}
