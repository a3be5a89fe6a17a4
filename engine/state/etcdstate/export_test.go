package etcdstate

// Landed says what the writer concludes, after a lost answer, of a
// transaction that appended entries up to seq, the last with hash, to run
// id: whether it was committed (landed), from the journal key it wrote.
func (s *Store) Landed(id string, seq uint64, hash string) (bool, error) {
	t := &txn{touched: []string{id}, heads: map[string]bool{id: true},
		after: map[string]*runHead{id: {seq: seq, hash: hash}}}
	return s.landed(nil, t, map[string]*runHead{id: {seq: seq}})
}

// MaxNodePart bounds the plain value of a compressed node block part.
const MaxNodePart = maxNodePart
