package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"go.uber.org/zap"
)

// commit writes batch in one transaction, trying again while etcd is
// unreachable, and answers its writes. A transaction that is not
// idempotent (it offers calls or puts items: sent twice, a call could be
// offered twice, or an item claimed meanwhile be put back unclaimed) is
// planned once and guarded by a marker of its own (ROOT/work/writes/W/N/):
// it writes the marker "b" (and each offer batch its marker "gI" in its
// nested transaction) only if "b" does not exist yet. An attempt whose
// answer was lost may have committed: the next attempt then writes
// nothing, and reads the markers to answer as the first one committed
// (landed). The markers are deleted with the next write.
func (w *writer) commit(batch []*wreq) {
	// A new slice: the loop frees the nodes of the batch it took
	// (writer.loop), all of them, once this returns.
	live := make([]*wreq, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Err() != nil {
			if r.done != nil {
				r.done <- wres{err: r.ctx.Err()}
			}
			continue
		}
		live = append(live, r)
	}
	batch = live
	if len(batch) == 0 {
		return
	}
	var ops []clientv3.Op
	var offers []*wreq
	for _, r := range batch {
		if r.offer != nil {
			offers = append(offers, r)
			continue
		}
		ops = append(ops, r.ops...)
	}
	plain := len(ops)
	mark := w.markOf(batch)
	var groups []offerGroup
	if len(offers) > 0 {
		groups = w.group(offers)
		for i, g := range groups {
			if mark != "" {
				ops = append(ops, g.txn(clientv3.OpPut(mark+"g"+strconv.Itoa(i), "")))
			} else {
				ops = append(ops, g.txn())
			}
		}
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		txn := w.cli.Txn(ctx)
		if mark != "" {
			txn = txn.If(clientv3.Compare(clientv3.CreateRevision(mark+"b"), "=", 0)).
				Then(append(ops[:len(ops):len(ops)], clientv3.OpPut(mark+"b", ""))...).
				Else(clientv3.OpGet(mark, clientv3.WithPrefix(), clientv3.WithKeysOnly()))
		} else {
			txn = txn.Then(ops...)
		}
		resp, err := txn.Commit()
		cancel()
		if err == nil && w.lose != nil && w.lose() {
			resp, err = nil, errors.New("test: the answer was lost")
		}
		if err == nil {
			if mark != "" {
				w.cleanUp("writes/"+mark, clientv3.OpDelete(mark, clientv3.WithPrefix()))
				if !resp.Succeeded {
					w.landed(batch, groups, mark, resp)
					return
				}
			}
			w.answer(batch, groups, plain, resp)
			return
		}
		if permanent(err) && w.ctx.Err() == nil {
			// Refused for what it holds (too many operations, too large):
			// trying again would not change that, and nothing of it was
			// written. Halves may pass; a single write that etcd refuses
			// fails, saying why.
			if len(batch) > 1 {
				h := len(batch) / 2
				w.commit(batch[:h])
				w.commit(batch[h:])
				return
			}
			err = explainRefused(err)
			w.log.Error("write work to etcd: refused", zap.Error(err))
		}
		if w.ctx.Err() != nil || permanent(err) {
			for _, r := range batch {
				if r.done != nil {
					r.done <- wres{err: err}
				}
			}
			return
		}
		w.log.Warn("write work to etcd: trying again", zap.Error(err))
		sleep(w.ctx, wait)
	}
}

// markOf returns the marker prefix of batch's transaction, "" when it is
// idempotent and needs none: only deletes, and puts of the same value
// under a guard (withdrawals).
func (w *writer) markOf(batch []*wreq) string {
	if w.marks == "" {
		return ""
	}
	for _, r := range batch {
		need := r.offer != nil
		for _, op := range r.ops {
			need = need || op.IsPut()
		}
		if need {
			return w.marks + strconv.FormatInt(w.seq.Add(1), 10) + "/"
		}
	}
	return ""
}

// answer answers batch's writes from the answer of the transaction that
// committed them: offers in groups (the transaction's nested ones after
// the plain operations), the others in order.
func (w *writer) answer(batch []*wreq, groups []offerGroup, plain int, resp *clientv3.TxnResponse) {
	for i, g := range groups {
		tr := resp.Responses[plain+i].GetResponseTxn()
		held := tr != nil && tr.Succeeded
		for _, r := range g.offers {
			res := wres{rev: resp.Header.Revision, held: held}
			if held {
				res.key = g.key
			}
			r.done <- res
		}
	}
	off := 0
	for _, r := range batch {
		if r.offer != nil {
			continue
		}
		held := true
		for i, op := range r.ops {
			if op.IsTxn() && off+i < len(resp.Responses) {
				if tr := resp.Responses[off+i].GetResponseTxn(); tr == nil || !tr.Succeeded {
					held = false
				}
			}
		}
		off += len(r.ops)
		if r.done != nil {
			r.done <- wres{rev: resp.Header.Revision, held: held}
		}
	}
}

// landed answers batch's writes when an earlier attempt of its
// transaction committed and its answer was lost: at the revision of its
// marker, each offer batch held if its marker was written. A plain write
// with a nested transaction cannot tell whether that held: none is
// waited for (withdrawals are written without waiting).
func (w *writer) landed(batch []*wreq, groups []offerGroup, mark string, resp *clientv3.TxnResponse) {
	var rev int64
	held := map[string]bool{}
	if len(resp.Responses) > 0 {
		for _, kv := range resp.Responses[0].GetResponseRange().GetKvs() {
			name := strings.TrimPrefix(string(kv.Key), mark)
			held[name] = true
			if name == "b" {
				rev = kv.ModRevision
			}
		}
	}
	w.log.Info("write work to etcd: the earlier attempt had committed (its answer was lost); not written again", zap.Int("writes", len(batch)), zap.Int64("revision", rev))
	for i, g := range groups {
		h := held["g"+strconv.Itoa(i)]
		for _, r := range g.offers {
			res := wres{rev: rev, held: h}
			if h {
				res.key = g.key
			}
			r.done <- res
		}
	}
	for _, r := range batch {
		if r.offer == nil && r.done != nil {
			r.done <- wres{rev: rev, held: true}
		}
	}
}

// writerID is a writer's own name under Keys.Writes: random, so that no
// other writer, of this process or another, ever writes its markers.
func writerID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
