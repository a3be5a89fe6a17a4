package state

// What another backend (package etcdstate) shares with the file: the
// checks and encodings of changes, node records and journal entries, and
// the hash chain. A run copied between backends keeps its bytes and its
// hashes, so that `reprise log --verify` says the same on either.

// Prepared is a Change checked and encoded by Prepare, ready for a backend
// to store: its records are private copies.
type Prepared struct{ c encodedChange }

// Prepare checks a change and encodes its records (ErrInvalidChange for
// a malformed one), as Apply does before queueing it. An entry's zero Time
// is set to now: when it was asked for, not when it lands.
func Prepare(c Change) (*Prepared, error) {
	ec, err := encodeChange(&c)
	if err != nil {
		return nil, err
	}
	return &Prepared{c: ec}, nil
}

// RunID returns the run the change is for.
func (p *Prepared) RunID() string { return p.c.runID }

// Run returns the run record the change stores (nil: the stored one
// stays). The backend sets its GraphHash to the run's snapshot's.
func (p *Prepared) Run() *Run { return p.c.run }

// Node returns the id and the encoded record of the node the change
// stores ("", nil: none).
func (p *Prepared) Node() (id string, stored []byte) { return p.c.nodeID, p.c.node }

// RemoveNode returns the node whose record the change deletes ("": none).
func (p *Prepared) RemoveNode() string { return p.c.removeNode }

// Snapshot returns the graph snapshot the change stores (nil: none).
func (p *Prepared) Snapshot() []byte { return p.c.snapshot }

// Entries returns the journal entries the change appends, in order, not
// sealed yet: the store's own (node removed, node updated, snapshot
// replaced, run updated) for what the change's entry does not cover, then
// that entry, with the digest of the node record, the hash of the
// snapshot, and the run record. runStored is the run record the backend
// stores with the change (EncodeRun), nil when it stores none. Call it
// again to seal them again after a conflict.
func (p *Prepared) Entries(runStored []byte) []*Entry { return p.c.plan(runStored) }

// EncodeRun encodes a run record as the store keeps it: every backend
// stores these bytes, and the journal a copy of them.
func EncodeRun(run *Run) ([]byte, error) { return encodeRun(run) }

// SealEntry makes e entry seq of its run's journal, after the entry whose
// hash is prev ("" for the first), sets its time to now when zero and to
// UTC, and returns the bytes to store and e's hash (also set in e.Hash).
func SealEntry(e *Entry, seq uint64, prev string) (stored []byte, hash string, err error) {
	return chainEntry(e, seq, prev)
}

// CheckEntry checks a stored entry against its hash and returns its
// sequence number, previous hash and hash, without decoding the rest.
func CheckEntry(stored []byte) (seq uint64, prev, hash string, err error) {
	return checkEntry(stored)
}

// OpenEntry checks a stored entry against its hash and decodes it.
func OpenEntry(stored []byte) (Entry, error) { return openEntry(stored) }

// EncodeNode encodes a node record as the store keeps it (the last
// MaxHistory attempts). ErrInvalidChange for a bad id.
func EncodeNode(n *NodeRecord) ([]byte, error) { return encodeNode(n) }

// DecodeNode decodes a stored node record.
func DecodeNode(stored []byte) (NodeRecord, error) { return unmarshalNode(stored) }

// EncodeHead encodes a journal head: its last sequence number and hash.
func EncodeHead(seq uint64, hash string) []byte { return encodeHead(seq, hash) }

// DecodeHead decodes a journal head.
func DecodeHead(b []byte) (seq uint64, hash string, err error) { return decodeHead(b) }

// GraphHash returns the hex SHA-256 of a graph snapshot, as Run.GraphHash
// records it.
func GraphHash(snapshot []byte) string { return sha256Hex(snapshot) }

// CheckKey checks an id used as a key (run, node, operator): 1 to
// bolt.MaxKeySize bytes, else ErrInvalidChange naming it.
func CheckKey(what, k string) error { return checkKey(what, k) }
