package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketOperators holds the operators allowed to use the web dashboard and
// its API: operators/<name> → Operator, JSON. It is created by the first
// PutOperator (older files have none).
var bucketOperators = []byte("operators")

// ErrOperatorNotFound is returned when no operator has the given name.
var ErrOperatorNotFound = errors.New("operator not found")

// Operator is a named person allowed to use the dashboard. The token they
// log in with is never stored: only TokenID (the public half of the token,
// to find the record) and Hash (a password hash of the secret half).
type Operator struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	TokenID   string    `json:"token_id"`
	Hash      string    `json:"hash"`
	Created   time.Time `json:"created,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// PutOperator stores op, replacing an operator of the same name.
func (s *Store) PutOperator(op Operator) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := checkKey("operator name", op.Name); err != nil {
		return err
	}
	v, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("operator %q: %w", op.Name, err)
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOperators)
		if err != nil {
			return fmt.Errorf("operators bucket in %s: %w", s.path, err)
		}
		return b.Put([]byte(op.Name), v)
	})
}

// DeleteOperator removes the operator name, or fails with ErrOperatorNotFound.
func (s *Store) DeleteOperator(name string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOperators)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("operator %q: %w", name, ErrOperatorNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// Operators returns every operator, by name.
func (s *Store) Operators() ([]Operator, error) {
	var out []Operator
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOperators)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var op Operator
			if err := json.Unmarshal(v, &op); err != nil {
				return s.corrupt("record of operator %q: %v", k, err)
			}
			out = append(out, op)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// ErrAlreadyApproved is returned when an approver approves a gate a second
// time: a gate that needs several approvals opens only with that many
// distinct approvers.
var ErrAlreadyApproved = errors.New("already approved by this approver")
