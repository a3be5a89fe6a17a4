package etcdstate

import (
	"encoding/binary"
	"errors"

	"github.com/reprise-si/reprise/internal/zblob"
)

// A journal key holds one sealed entry, or a block of consecutive entries:
// those one transaction appended to the run. The key is the sequence
// number of the block's last entry, so that the block holding entry s is
// the first key at or after s's, as for single entries. A block is
// blockMagic and then, for each entry, its length (uvarint) and its bytes.
// A sealed entry starts with '{': a value that does not start with
// blockMagic or zblockMagic is one entry, as the first versions of this
// package wrote every entry.
//
// A value that compresses well (a level's block of a few hundred entries
// of JSON takes a seventh) is stored compressed: zblockMagic and then the
// zstd frame (internal/zblob) of the plain value, a block or one entry.
// The hash chain is over the sealed entries, whatever their key holds.
const (
	blockMagic  = 0x00
	zblockMagic = 0x01
)

// maxPlainBlock bounds the plain value of a compressed journal key: a
// block holds what one transaction appends to a run, under MaxTxnBytes,
// and etcd refuses requests beyond a few MiB (1.5 MiB by default). A
// larger value is stored plain; a compressed one that says or turns out
// larger is damaged, refused before its bytes are allocated.
const maxPlainBlock = 16 << 20

// appendBlock appends the value of a journal key holding entries, plain.
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

// journalValue returns the value of a journal key holding entries:
// appendBlock's, compressed when that saves (zblob.Pack declines values
// under 512 bytes, a single entry mostly). It is never longer than
// blockSize says, which the transaction's accounting relies on.
func journalValue(entries [][]byte, n int) []byte {
	plain := appendBlock(make([]byte, 0, blockSize(len(entries), n)), entries)
	if len(plain) > maxPlainBlock {
		return plain
	}
	z, ok := zblob.Pack(append(make([]byte, 0, len(plain)/4+16), zblockMagic), plain)
	if !ok || len(z) >= len(plain) {
		return plain
	}
	return z
}

// blockSize is the length of appendBlock's value for entries of n bytes in
// all, and a bound of journalValue's.
func blockSize(entries, n int) int {
	if entries == 1 {
		return n
	}
	return 1 + n + entries*binary.MaxVarintLen32
}

var errBadBlock = errors.New("journal block: bad length")

// packedError is a compressed journal value that does not decompress
// within maxPlainBlock, or holds another compressed value: a damaged
// block, errBadBlock for errors.Is.
type packedError struct{ err error }

func (e *packedError) Error() string        { return "journal block: " + e.err.Error() }
func (e *packedError) Unwrap() error        { return e.err }
func (e *packedError) Is(target error) bool { return target == errBadBlock }

// openBlock returns a journal key's value plain: v itself, or what a
// compressed v holds.
func openBlock(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != zblockMagic {
		return v, nil
	}
	plain, err := zblob.Unpack(v[1:], maxPlainBlock)
	if err != nil {
		return nil, &packedError{err}
	}
	if len(plain) > 0 && plain[0] == zblockMagic {
		return nil, &packedError{errors.New("compressed twice")}
	}
	return plain, nil
}

// splitBlock calls fn with each entry a journal key's value holds, in
// order, in any of its forms (readers that also count the entries open a
// compressed value once, openBlock, and pass the plain one). A block
// whose lengths do not add up gives errBadBlock after the entries before
// the damage; a damaged compressed one, before any entry.
func splitBlock(v []byte, fn func(stored []byte) error) error {
	v, err := openBlock(v)
	if err != nil {
		return err
	}
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
