package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// ServeOptions configure ServeCommands.
type ServeOptions struct {
	Client *clientv3.Client
	Keys   Keys
	Name   string        // this coordinator, as the senders see it
	TTL    time.Duration // the lease of the commands it takes (0: DefaultTTL)
	// Live returns the run this coordinator is running ("" when none): it
	// takes only that run's commands.
	Live func() string
	// Authorize decides whether the operator may do cmd: token is the
	// operator's token opened from the command's seal, "" when it carries
	// none. It returns the name to journal the command with. nil: every
	// command is applied as sent.
	Authorize func(ctx context.Context, cmd Command, token string) (by string, err error)
	// Apply applies cmd (its By is the authorized name); a retry sets
	// cmd.Reset.
	Apply  func(ctx context.Context, cmd *Command) error
	Logger *zap.Logger
}

// ServeCommands applies the operators' commands for the run o.Live
// returns, until ctx is done. It publishes this coordinator's public key
// (for the operators' sealed tokens) under a lease of its own; each
// command is taken with a compare-and-swap that puts it under that lease
// (so that exactly one coordinator applies it, and a command taken by a
// coordinator that dies goes with it: at most once), authorized, applied,
// and answered.
func ServeCommands(ctx context.Context, o ServeOptions) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	sl, err := newSealer(o.Name)
	if err != nil {
		o.Logger.Error("operators' commands through etcd not served", zap.Error(err))
		return
	}
	var sess *concurrency.Session
	for ctx.Err() == nil {
		ttl := int(max(1, o.TTL.Round(time.Second)/time.Second))
		if sess, err = concurrency.NewSession(o.Client, concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(ctx))); err == nil {
			break
		}
		sleep(ctx, time.Second)
	}
	if ctx.Err() != nil {
		return
	}
	defer func() {
		// Revoke the lease (the key published goes at once), bounded:
		// without a quorum it expires by itself.
		sess.Orphan()
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		o.Client.Revoke(rctx, sess.Lease())
		cancel()
	}()
	keyOfMine := o.Keys.CommandKeys() + o.Name
	if _, err := o.Client.Put(ctx, keyOfMine, sl.published(), clientv3.WithLease(sess.Lease())); err != nil && ctx.Err() == nil {
		o.Logger.Warn("publish the key for the operators' tokens", zap.Error(err))
	}
	seen := map[string]bool{} // the commands taken: a copy put again is not applied again
	// Commands for a run not live here yet (a coordinator taking over is
	// still resuming it): looked at again until they are taken or gone.
	later := map[string]*mvccpb.KeyValue{}
	handle := func(kv *mvccpb.KeyValue) {
		var cmd Command
		key := string(kv.Key)
		delete(later, key)
		if json.Unmarshal(kv.Value, &cmd) != nil || cmd.PickedBy != "" || cmd.Done || cmd.Run == "" || seen[key] {
			return
		}
		if cmd.Run != o.Live() {
			later[key] = kv
			return
		}
		picked := cmd
		picked.PickedBy, picked.Seals = o.Name, nil // the seals are of no use once taken
		val, _ := json.Marshal(picked)
		tr, err := o.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(sess.Lease()))).Commit()
		if err != nil || !tr.Succeeded {
			return
		}
		if len(seen) > 10000 {
			clear(seen)
		}
		seen[key] = true
		pickRev := tr.Header.Revision
		err = o.apply(ctx, sl, key, &cmd)
		picked.Done = true
		picked.By, picked.Reset = cmd.By, cmd.Reset
		if err != nil {
			picked.Error = err.Error()
		}
		o.Logger.Info("operator's command applied", zap.String("op", cmd.Op), zap.String("run", cmd.Run), zap.String("node", cmd.Node),
			zap.String("zone", cmd.Zone), zap.String("by", cmd.By), zap.String("from", cmd.From), zap.String("error", picked.Error))
		// The answer lives under the sender's lease: gone with the sender.
		val, _ = json.Marshal(picked)
		wctx := context.WithoutCancel(ctx)
		_, err = o.Client.Txn(wctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", pickRev)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(clientv3.LeaseID(cmd.Lease)))).Commit()
		if err != nil { // the sender's lease is gone: nobody waits for the answer
			o.Client.Txn(wctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", pickRev)).Then(clientv3.OpDelete(key)).Commit()
		}
	}
	for ctx.Err() == nil {
		resp, err := o.Client.Get(ctx, o.Keys.Commands(), clientv3.WithPrefix())
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for _, kv := range resp.Kvs {
			handle(kv)
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := o.Client.Watch(wctx, o.Keys.Commands(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		tick := time.NewTicker(200 * time.Millisecond)
	watch:
		for {
			select {
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					break watch
				}
				for _, ev := range wr.Events {
					if ev.Type == mvccpb.PUT {
						handle(ev.Kv)
					} else {
						delete(later, string(ev.Kv.Key))
					}
				}
			case <-tick.C:
				if len(later) > 0 && o.Live() != "" {
					kvs := make([]*mvccpb.KeyValue, 0, len(later))
					for _, kv := range later {
						kvs = append(kvs, kv)
					}
					for _, kv := range kvs {
						handle(kv)
					}
				}
			}
		}
		tick.Stop()
		cancel()
		clear(later) // the next Get finds them again
		sleep(ctx, 200*time.Millisecond)
	}
}

// apply opens the command's token, authorizes it and applies it.
func (o ServeOptions) apply(ctx context.Context, sl *sealer, key string, cmd *Command) error {
	token, err := sl.open(key, *cmd)
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if o.Authorize != nil {
		by, err := o.Authorize(ctx, *cmd, token)
		if err != nil {
			return fmt.Errorf("refused: %w", err)
		}
		cmd.By = by
	}
	if cmd.By == "" {
		return fmt.Errorf("refused: %s says nobody: the journal needs who asks (--by)", describe(*cmd))
	}
	return o.Apply(ctx, cmd)
}
