package auth

import (
	"fmt"
	"sync"

	"github.com/reprise-si/reprise/engine/state"
)

// Checker checks tokens against the operators of a state file. The list
// is read on every check, so that a revoked operator is refused at once;
// the costly argon2id comparison is done once per token and hash, then
// remembered (by the token's SHA-256, never the token).
type Checker struct {
	// Operators reads the current operators (the state file, or the control
	// socket of the process that holds it).
	Operators func() ([]state.Operator, error)

	mu   sync.Mutex
	good map[string]string // token fingerprint → the hash it matched
}

// Check returns the operator whose token this is, or ErrBadToken.
func (c *Checker) Check(token string) (state.Operator, error) {
	id, secret, ok := splitToken(token)
	if !ok {
		return state.Operator{}, ErrBadToken
	}
	ops, err := c.Operators()
	if err != nil {
		return state.Operator{}, fmt.Errorf("read operators: %w", err)
	}
	var op *state.Operator
	for i := range ops {
		if ops[i].TokenID == id {
			op = &ops[i]
			break
		}
	}
	if op == nil {
		return state.Operator{}, ErrBadToken
	}
	fp := Fingerprint(token)
	c.mu.Lock()
	known := c.good[fp] == op.Hash
	c.mu.Unlock()
	if known {
		return *op, nil
	}
	if !checkSecret(secret, op.Hash) {
		return state.Operator{}, ErrBadToken
	}
	c.mu.Lock()
	if c.good == nil || len(c.good) > 10000 {
		c.good = map[string]string{}
	}
	c.good[fp] = op.Hash
	c.mu.Unlock()
	return *op, nil
}
