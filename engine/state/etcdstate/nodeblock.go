package etcdstate

import (
	"encoding/binary"
	"errors"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/reprise-si/reprise/internal/zblob"
)

// The node records one transaction writes for a run go in one key, a node
// block (/P/runs/nblk/<run>/<seq>), named by the sequence number of the
// last journal entry the transaction appends to the run (several keys,
// <seq>-1, <seq>-2…, when they take more than ChunkSize): a level of a
// hundred steps commits one key for its records instead of a hundred, and
// etcd's cost is per key. A node's own key (/P/runs/nodes/<run>/<node>) is
// still read, and written by a transaction that appends no entry to the
// run, by CreateRun and ImportRun (records other than plain pending), and
// by earlier versions of this package. A node's record is the one in the
// key of the highest ModRevision among its own key and the blocks that hold
// it; a node of the roster with neither is pending; an empty record is a
// node removed. The writer deletes a block once every record it holds has
// a later one (nodeindex.go), in the transaction that writes the last of
// them, so that a run keeps about one record per node.
//
// A block is nodeBlockMagic and then, for each node, the length of its id
// (uvarint), the id, the length of its record (uvarint) and the record
// (state.EncodeNode; empty: removed). A part that compresses well (a
// level's hundred records take about a fifth) is stored compressed, as
// journal blocks are (block.go): nodeZBlockMagic and then the zstd frame
// (internal/zblob) of the plain part. The writer cuts the parts plain, as
// earlier versions did, and packs each one: the part limit (ChunkSize) and
// the transaction's accounting (nodetxn.go) count the plain bytes, never
// fewer than those sent. Every reader opens a value through
// splitNodeBlock, which takes both forms: a plain block written by an
// earlier version reads as it is.
const (
	nodeBlockMagic  = 0x01
	nodeZBlockMagic = 0x02
)

// maxNodePart bounds the plain value of a compressed node block part. A
// part holds at most ChunkSize bytes, or a single record bigger than that:
// the writer stores a part over the bound plain, and a compressed value
// that says or turns out larger is damaged, refused before its bytes are
// allocated.
const maxNodePart = 2 * ChunkSize

// nodeBlockOverhead is the most a node adds to a block besides its id and
// record: their two lengths.
const nodeBlockOverhead = 2 * binary.MaxVarintLen32

// appendNodeRecord appends one node's id and record to a block.
func appendNodeRecord(dst []byte, id string, stored []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	dst = binary.AppendUvarint(dst, uint64(len(stored)))
	return append(dst, stored...)
}

// nodeBlockValue returns the value of a node block part whose plain value
// is plain (nodeBlockMagic and records): compressed when that saves
// (zblob.Pack declines values under 512 bytes, and those it would not make
// an eighth smaller), else plain itself. It is never longer than plain.
func nodeBlockValue(plain []byte) []byte {
	if len(plain) > maxNodePart {
		return plain
	}
	z, ok := zblob.Pack(append(make([]byte, 0, len(plain)/4+16), nodeZBlockMagic), plain)
	if !ok || len(z) >= len(plain) {
		return plain
	}
	return z
}

var errBadNodeBlock = errors.New("bad length or id")

// nodePackedError is a compressed node block that does not decompress
// within maxNodePart, or does not hold a plain block: a damaged block,
// errBadNodeBlock for errors.Is.
type nodePackedError struct{ err error }

func (e *nodePackedError) Error() string        { return e.err.Error() }
func (e *nodePackedError) Unwrap() error        { return e.err }
func (e *nodePackedError) Is(target error) bool { return target == errBadNodeBlock }

// openNodeBlock returns a node block key's value plain: v itself, or what
// a compressed v holds, which must be a plain block (not compressed again).
// The plain value is at most maxNodePart bytes: a frame that says more is
// refused before they are allocated (zblob.Unpack).
func openNodeBlock(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != nodeZBlockMagic {
		return v, nil
	}
	plain, err := zblob.Unpack(v[1:], maxNodePart)
	if err != nil {
		return nil, &nodePackedError{err}
	}
	if len(plain) == 0 || plain[0] != nodeBlockMagic {
		return nil, &nodePackedError{errors.New("compressed value: not a plain node block")}
	}
	return plain, nil
}

// splitNodeBlock calls fn with each node id and record a block holds, in
// order, plain or compressed (the records fn gets are slices of the plain
// value). A value that is not a whole block gives errBadNodeBlock (fn may
// have been called for the nodes before the damage); a damaged compressed
// one, an error that is errBadNodeBlock for errors.Is, before any node.
func splitNodeBlock(v []byte, fn func(id string, stored []byte)) error {
	v, err := openNodeBlock(v)
	if err != nil {
		return err
	}
	if len(v) == 0 || v[0] != nodeBlockMagic {
		return errBadNodeBlock
	}
	v = v[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(v)
		if k <= 0 || n > uint64(len(v)-k) {
			return nil, false
		}
		f := v[k : k+int(n)]
		v = v[k+int(n):]
		return f, true
	}
	for len(v) > 0 {
		id, ok := field()
		if !ok || len(id) == 0 {
			return errBadNodeBlock
		}
		stored, ok := field()
		if !ok {
			return errBadNodeBlock
		}
		fn(string(id), stored)
	}
	return nil
}

// nodeSources are the keys a run's node records come from, read at one
// revision: its nodes' own keys (in key order, under prefix), its node
// blocks and its roster (ids, sorted).
type nodeSources struct {
	prefix string
	own    []*mvccpb.KeyValue
	blocks []*mvccpb.KeyValue
	roster []string
}

// eachRecord calls fn with each node's current record and the key it is
// in, in id order: stored is nil for a plain pending node of the roster
// without a record elsewhere; removed nodes are left out. A damaged block
// gives *state.CorruptError naming its key, before fn is called.
func (s *Store) eachRecord(src nodeSources, fn func(id string, stored, key []byte) error) error {
	type current struct {
		stored []byte
		rev    int64
		key    []byte
	}
	cur := make(map[string]current, len(src.own)+len(src.roster))
	for _, b := range src.blocks {
		err := splitNodeBlock(b.Value, func(id string, stored []byte) {
			if c, ok := cur[id]; !ok || b.ModRevision >= c.rev {
				cur[id] = current{stored, b.ModRevision, b.Key}
			}
		})
		if err != nil {
			return s.corrupt(string(b.Key), "node block: %v", err)
		}
	}
	for _, kv := range src.own {
		id := string(kv.Key[len(src.prefix):])
		if c, ok := cur[id]; !ok || kv.ModRevision > c.rev {
			cur[id] = current{kv.Value, kv.ModRevision, kv.Key}
		}
	}
	ids := make([]string, 0, max(len(cur), len(src.roster)))
	for id := range cur {
		ids = append(ids, id)
	}
	for _, id := range src.roster {
		if _, ok := cur[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		c, ok := cur[id]
		if ok && len(c.stored) == 0 {
			continue // removed
		}
		if err := fn(id, c.stored, c.key); err != nil {
			return err
		}
	}
	return nil
}
