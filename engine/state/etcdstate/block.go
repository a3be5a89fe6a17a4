package etcdstate

import (
	"encoding/binary"
	"errors"
)

// A journal key holds one sealed entry, or a block of consecutive entries:
// those one transaction appended to the run. The key is the sequence
// number of the block's last entry, so that the block holding entry s is
// the first key at or after s's, as for single entries. A block is
// blockMagic and then, for each entry, its length (uvarint) and its bytes.
// A sealed entry starts with '{': a value that does not start with
// blockMagic is one entry, as the first versions of this package wrote
// every entry.
const blockMagic = 0x00

// appendBlock appends the value of a journal key holding entries.
func appendBlock(dst []byte, entries [][]byte) []byte {
	if len(entries) == 1 {
		return append(dst, entries[0]...)
	}
	dst = append(dst, blockMagic)
	for _, e := range entries {
		dst = binary.AppendUvarint(dst, uint64(len(e)))
		dst = append(dst, e...)
	}
	return dst
}

// blockSize is the length of appendBlock's value for entries of n bytes in
// all.
func blockSize(entries, n int) int {
	if entries == 1 {
		return n
	}
	return 1 + n + entries*binary.MaxVarintLen32
}

var errBadBlock = errors.New("journal block: bad length")

// splitBlock calls fn with each entry a journal key's value holds, in
// order. A block whose lengths do not add up gives errBadBlock after the
// entries before the damage.
func splitBlock(v []byte, fn func(stored []byte) error) error {
	if len(v) == 0 || v[0] != blockMagic {
		return fn(v)
	}
	v = v[1:]
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || n == 0 || n > uint64(len(v)-k) {
			return errBadBlock
		}
		if err := fn(v[k : k+int(n)]); err != nil {
			return err
		}
		v = v[k+int(n):]
	}
	return nil
}

// blockLen returns how many entries a journal key's value holds (0 for a
// damaged block).
func blockLen(v []byte) int {
	n := 0
	if splitBlock(v, func([]byte) error { n++; return nil }) != nil {
		return 0
	}
	return n
}
