package etcdstate

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/reprise-si/reprise/engine/state"
)

// PutOperator stores op, replacing an operator of the same name.
func (s *Store) PutOperator(op state.Operator) error {
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
	return s.read(func(ctx context.Context) error {
		_, err := s.cli.Put(ctx, s.k.operator(op.Name), string(v))
		return err
	})
}

// DeleteOperator removes the operator name, or fails with
// state.ErrOperatorNotFound.
func (s *Store) DeleteOperator(name string) error {
	if s.opts.ReadOnly {
		return state.ErrReadOnly
	}
	return s.read(func(ctx context.Context) error {
		resp, err := s.cli.Delete(ctx, s.k.operator(name))
		if err != nil {
			return err
		}
		if resp.Deleted == 0 {
			return fmt.Errorf("operator %q: %w", name, state.ErrOperatorNotFound)
		}
		return nil
	})
}

// Operators returns every operator, by name.
func (s *Store) Operators() ([]state.Operator, error) {
	var out []state.Operator
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
		return nil
	})
	return out, err
}
