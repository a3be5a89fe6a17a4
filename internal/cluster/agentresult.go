package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The agent's result writer: results of one offer batch together, fenced
// by the batch's revision; calls it claimed itself one by one.

// maxResultBytes bounds a result an agent writes (its message and
// outputs): etcd refuses a request over 1.5 MiB by default. It is the
// graphs' default limits.node_outputs; a graph that allows more (up to
// 16 MiB) gets no more through agents (README, Scaling out).
const maxResultBytes = 1 << 20

// resultSize is the bytes of r's message and outputs.
func resultSize(r Result) int {
	n := len(r.Message) + len(r.Error)
	for k, v := range r.Outputs {
		n += len(k) + len(v)
	}
	return n
}

// maxBatchBytes bounds the results of one transaction (a last one may go
// over by one result and its events: still well under etcd's 1.5 MiB).
// It counts them unpacked: a result batch is stored packed (zvalue.go),
// smaller.
const maxBatchBytes = 512 << 10

// maxEventBytes bounds the events of one key (a flush, or a result's last
// events).
const maxEventBytes = 64 << 10

// eventsSize is the bytes of evs, about.
func eventsSize(evs []wireEvent) int {
	n := 0
	for _, e := range evs {
		n += len(e.Message) + len(e.Key) + len(e.Value) + 16
	}
	return n
}

// pendingResult is a result waiting for the result writer.
type pendingResult struct {
	it   Item
	res  Result
	evs  []wireEvent
	nlog *zap.Logger
	done chan struct{}
	// offer, rev: an offered call's batch and its revision ("": a call
	// this agent claimed itself).
	offer string
	rev   int64
	// withdrawn: the coordinator withdrew the offered call (this is the
	// key that said so): no result, the call only counts as answered.
	withdrawn string
}

// writeResult hands p to the result writer and waits until it is written
// (or refused, or given up).
func (a *Agent) writeResult(hard context.Context, p *pendingResult) {
	p.done = make(chan struct{})
	select {
	case a.results <- p:
		<-p.done
	case <-hard.Done():
	}
}

// queueResult hands p to the result writer without waiting.
func (a *Agent) queueResult(p *pendingResult) {
	if p.nlog == nil {
		p.nlog = a.log
	}
	select {
	case a.results <- p:
	case <-time.After(time.Minute):
		a.log.Warn("withdrawn step not counted in its offer batch: the batch goes with the agent's lease", zap.String("node", p.it.Req.NodeID))
	}
}

// resultLoop writes results in batches until stop is done.
func (a *Agent) resultLoop(hard, stop context.Context) {
	for {
		var first *pendingResult
		select {
		case first = <-a.results:
		case <-stop.Done():
			return
		}
		batch := []*pendingResult{first}
		size := resultSize(first.res) + eventsSize(first.evs)
		hold := time.NewTimer(resultHold)
	fill:
		for len(batch) < a.resultBatch() && size < maxBatchBytes {
			select {
			case p := <-a.results:
				batch = append(batch, p)
				size += resultSize(p.res) + eventsSize(p.evs)
				continue
			default:
			}
			if !a.batchesRunning(batch) {
				break
			}
			select {
			case p := <-a.results:
				batch = append(batch, p)
				size += resultSize(p.res) + eventsSize(p.evs)
			case <-hold.C:
				break fill
			case <-stop.Done():
				break fill
			}
		}
		hold.Stop()
		a.writeResults(hard, batch)
		for _, p := range batch {
			if p.done != nil {
				close(p.done)
			}
		}
	}
}

// resultHold bounds how long a result waits for the other calls of its
// offer batch that this agent runs.
const resultHold = 10 * time.Millisecond

// batchesRunning tells whether some call of the offer batches of batch's
// results is not answered and not in batch: the results of one offer batch
// then wait for each other a little (resultHold), and go in one key and
// reach the coordinator together.
func (a *Agent) batchesRunning(batch []*pendingResult) bool {
	in := map[string]int{}
	for _, p := range batch {
		if p.offer != "" {
			in[p.offer]++
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for offer, n := range in {
		if bs := a.batches[offer]; bs != nil && bs.left > n {
			return true
		}
	}
	return false
}

// resultGroup is the results of one offer batch in one transaction.
type resultGroup struct {
	offer   string
	run     string
	rev     int64
	results []Result
	logs    []*pendingResult
	markers []string // withdrawal keys to delete
}

// writeResults writes the results of batch, each only if its claim still
// holds (fencing): a call this agent claimed in a nested transaction of
// its own; the results of one offer batch together, in one key, with the
// batch deleted once each of its calls is answered. A result refused is
// written aside, for the coordinator to journal. It tries again while etcd
// is unreachable, until hard is done.
func (a *Agent) writeResults(hard context.Context, batch []*pendingResult) {
	k := a.opts.Keys
	var ops []clientv3.Op
	var own []*pendingResult
	var groups []*resultGroup
	byOffer := map[string]*resultGroup{}
	for _, p := range batch {
		if p.res.Call == "" {
			p.res.Call, p.res.ClaimRev, p.res.Agent, p.res.Op, p.res.Node = p.it.Call, p.rev, a.opts.Name, p.it.Op, p.it.Req.NodeID
		}
		if p.offer == "" {
			run, node := p.it.Req.RunID, p.it.Req.NodeID
			val, _ := json.Marshal(p.res)
			then := []clientv3.Op{clientv3.OpPut(k.Result(run, node), string(val))}
			if len(p.evs) > 0 {
				b, _ := json.Marshal(p.evs)
				then = append([]clientv3.Op{clientv3.OpPut(k.Event(run, node, p.res.ClaimRev, 99999999), string(b))}, then...)
			}
			ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k.Claim(run, node)), "=", p.res.ClaimRev)}, then, nil))
			own = append(own, p)
			continue
		}
		g := byOffer[p.offer]
		if g == nil {
			g = &resultGroup{offer: p.offer, run: p.it.Req.RunID, rev: p.rev}
			byOffer[p.offer] = g
			groups = append(groups, g)
		}
		if p.withdrawn != "" {
			g.markers = append(g.markers, p.withdrawn)
			continue
		}
		r := p.res
		r.Events = p.evs
		g.results = append(g.results, r)
		g.logs = append(g.logs, p)
	}
	a.mu.Lock()
	for _, g := range groups {
		var then []clientv3.Op
		bs := a.batches[g.offer]
		if len(g.results) > 0 {
			val, _ := json.Marshal(g.results)
			if bs != nil && bs.packed {
				val = packValue(val) // its coordinator reads it
			}
			id := fmt.Sprintf("%s.%x.%d", a.opts.Name, int64(a.lease), a.batchSeq.Add(1))
			then = append(then, clientv3.OpPut(k.Batch(g.run, id), string(val)))
		}
		for _, m := range g.markers {
			then = append(then, clientv3.OpDelete(m))
		}
		if bs != nil {
			bs.left -= len(g.results) + len(g.markers)
			if bs.left <= 0 {
				delete(a.batches, g.offer)
				a.settled[g.offer] = true
				then = append(then, clientv3.OpDelete(g.offer))
			}
		}
		ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(g.offer), "=", g.rev)}, then, nil))
	}
	a.mu.Unlock()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(hard, 10*time.Second)
		resp, err := a.opts.Client.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err == nil && a.loseResult != nil && a.loseResult() {
			resp, err = nil, errors.New("test: the answer was lost")
		}
		if err == nil {
			var refused []clientv3.Op
			refuse := func(p *pendingResult, r Result) {
				p.nlog.Error("result refused: this agent's claim was taken over (its lease expired); writing it aside for the journal",
					zap.String("status", string(r.Status)))
				val, _ := json.Marshal(r)
				refused = append(refused, clientv3.OpPut(k.Refused(p.it.Req.RunID, r.Node, r.ClaimRev), string(val)))
			}
			for i, r := range resp.Responses {
				held := false
				if tr := r.GetResponseTxn(); tr != nil && tr.Succeeded {
					held = true
				}
				if i < len(own) {
					p := own[i]
					if !held {
						refuse(p, p.res)
						continue
					}
					trace(p.it.Req.NodeID, "written")
					p.nlog.Info("step done", zap.String("status", string(p.res.Status)), zap.Bool("restored", p.res.Restored), zap.String("error", p.res.Error))
					continue
				}
				g := groups[i-len(own)]
				for j, p := range g.logs {
					switch {
					case !held && p.res.HandedBack:
						p.nlog.Warn("step not handed back: its offer went with this agent's lease; the coordinator puts it back")
					case !held:
						refuse(p, g.results[j])
					case p.res.HandedBack:
						p.nlog.Info("step handed back (agent stopping)", zap.Bool("check_first", p.res.CheckFirst))
					default:
						trace(p.it.Req.NodeID, "written")
						p.nlog.Info("step done", zap.String("status", string(p.res.Status)), zap.Bool("restored", p.res.Restored), zap.String("error", p.res.Error))
					}
				}
			}
			if len(refused) > 0 {
				ctx, cancel := context.WithTimeout(hard, 10*time.Second)
				if _, err := a.opts.Client.Txn(ctx).Then(refused...).Commit(); err != nil {
					a.log.Error("write refused results aside", zap.Error(err))
				}
				cancel()
			}
			return
		}
		if hard.Err() != nil {
			a.log.Error("results not written: stopped while etcd was unreachable", zap.Int("results", len(batch)), zap.Error(err))
			return
		}
		if permanent(err) {
			a.log.Error("write results: refused by etcd, trying again (mend what it says, then restart this agent)", zap.Int("results", len(batch)), zap.Error(explainRefused(err)))
		} else {
			a.log.Warn("write results: etcd unreachable, trying again", zap.Error(err))
		}
		sleep(hard, wait)
	}
}
