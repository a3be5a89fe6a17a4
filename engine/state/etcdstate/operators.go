package etcdstate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// ErrOperatorsChanged is returned by a conditional change of the operators
// (PutOperatorIf, DeleteOperatorIf) when they changed after the read it is
// conditional on: nothing was written; read them again and decide again.
var ErrOperatorsChanged = errors.New("the operators changed since they were read")

// operatorsRev is the operators' guard key, ROOT/operators-rev (outside
// ROOT/operators/, so that reading the operators never meets it): every
// change of the operators puts it in the transaction that makes the
// change, so that its ModRevision is the revision of the last change
// (0 while none was made since this key exists). A conditional change
// compares it with the revision its read was made at: etcd's compares do
// not see a key deleted under a prefix, this one key does.
//
// Its value is the id of the change that put it last (changeID): a change
// retried after etcd's answer was lost (the attempt timed out, the member
// went away) and whose compare now fails reads the guard in the same
// transaction, and if it holds its own id, the first attempt landed and
// the change is reported done. If another change came between the lost
// answer and the retry, the guard holds that one's id: the retry then
// fails as any change made after the read (ErrOperatorsChanged, or
// state.ErrOperatorNotFound for an unconditional revoke).
func (k keys) operatorsRev() string { return k.root + "operators-rev" }

// changeID returns a new id for one change of the operators, put in the
// guard key by each attempt of that change.
func changeID() string { return rand.Text() }

// ours reports whether the guard key read by a transaction's Else (its
// first response) holds id: the change id put it, an earlier attempt of
// this change landed.
func ours(resp *clientv3.TxnResponse, id string) bool {
	if len(resp.Responses) == 0 {
		return false
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	return len(kvs) > 0 && string(kvs[0].Value) == id
}

// loseAnswer, when set (by tests only), is asked after each committed
// change of the operators whether to drop etcd's answer: the attempt then
// fails as one that timed out, and is retried.
var loseAnswer atomic.Pointer[func(*Store) bool]

// answerLost reports whether the test hook drops the answer to a change
// made through s.
func (s *Store) answerLost() bool {
	f := loseAnswer.Load()
	return f != nil && (*f)(s)
}

// errAnswerLost is the error of an attempt whose answer a test dropped.
var errAnswerLost = fmt.Errorf("test: the answer was lost: %w", context.DeadlineExceeded)

// unchangedSince is the compare that holds while no change of the
// operators was made after revision rev.
func (s *Store) unchangedSince(rev int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(s.k.operatorsRev()), "<", rev+1)
}

// PutOperator stores op, replacing an operator of the same name.
func (s *Store) PutOperator(op state.Operator) error {
	return s.putOperator(op, nil)
}

// PutOperatorIf stores op, as PutOperator, only if the operators have not
// changed since revision rev (OperatorsAt): else it writes nothing and
// fails with ErrOperatorsChanged. The check and the write are one etcd
// transaction.
func (s *Store) PutOperatorIf(op state.Operator, rev int64) error {
	return s.putOperator(op, []clientv3.Cmp{s.unchangedSince(rev)})
}

func (s *Store) putOperator(op state.Operator, cmps []clientv3.Cmp) error {
	if s.opts.ReadOnly {
		return state.ErrReadOnly
	}
	if err := state.CheckKey("operator name", op.Name); err != nil {
		return err
	}
	v, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("operator %q: %w", op.Name, err)
	}
	id := changeID()
	return s.read(func(ctx context.Context) error {
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(
			clientv3.OpPut(s.k.operator(op.Name), string(v)),
			clientv3.OpPut(s.k.operatorsRev(), id),
		).Else(clientv3.OpGet(s.k.operatorsRev())).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded && !ours(resp, id) {
			return fmt.Errorf("operator %q: %w", op.Name, ErrOperatorsChanged)
		}
		if resp.Succeeded && s.answerLost() {
			return errAnswerLost
		}
		return nil
	})
}

// DeleteOperator removes the operator name, or fails with
// state.ErrOperatorNotFound.
func (s *Store) DeleteOperator(name string) error {
	return s.deleteOperator(name, -1)
}

// DeleteOperatorIf removes the operator name, as DeleteOperator, only if
// the operators have not changed since revision rev (OperatorsAt): else it
// writes nothing and fails with ErrOperatorsChanged. The check and the
// write are one etcd transaction.
func (s *Store) DeleteOperatorIf(name string, rev int64) error {
	return s.deleteOperator(name, rev)
}

// deleteOperator removes name, only if nothing changed the operators after
// rev when rev >= 0.
func (s *Store) deleteOperator(name string, rev int64) error {
	if s.opts.ReadOnly {
		return state.ErrReadOnly
	}
	key := s.k.operator(name)
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Version(key), ">", 0)}
	if rev >= 0 {
		cmps = append(cmps, s.unchangedSince(rev))
	}
	id := changeID()
	return s.read(func(ctx context.Context) error {
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(
			clientv3.OpDelete(key),
			clientv3.OpPut(s.k.operatorsRev(), id),
		).Else(clientv3.OpGet(s.k.operatorsRev())).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			if s.answerLost() {
				return errAnswerLost
			}
			return nil
		}
		if ours(resp, id) {
			return nil // an earlier attempt, whose answer was lost, landed
		}
		if kvs := resp.Responses[0].GetResponseRange().Kvs; rev >= 0 && len(kvs) > 0 && kvs[0].ModRevision > rev {
			return fmt.Errorf("operator %q: %w", name, ErrOperatorsChanged)
		}
		return fmt.Errorf("operator %q: %w", name, state.ErrOperatorNotFound)
	})
}

// Operators returns every operator, by name.
func (s *Store) Operators() ([]state.Operator, error) {
	ops, _, err := s.OperatorsAt()
	return ops, err
}

// OperatorsAt returns every operator, by name, and the revision of etcd
// they were read at: PutOperatorIf and DeleteOperatorIf with it write only
// if no change of the operators was made since.
func (s *Store) OperatorsAt() ([]state.Operator, int64, error) {
	var out []state.Operator
	var rev int64
	err := s.read(func(ctx context.Context) error {
		resp, err := s.cli.Get(ctx, s.k.operators(), clientv3.WithPrefix())
		if err != nil {
			return err
		}
		out = out[:0]
		for _, kv := range resp.Kvs {
			var op state.Operator
			if err := json.Unmarshal(kv.Value, &op); err != nil {
				return s.corrupt(string(kv.Key), "operator record: %v", err)
			}
			out = append(out, op)
		}
		rev = resp.Header.Revision
		return nil
	})
	return out, rev, err
}
