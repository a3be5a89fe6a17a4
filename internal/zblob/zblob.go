// Package zblob compresses the values reprise writes to etcd in bulk
// (journal blocks, offer and result batches): every byte of a value goes
// through Raft to each member, into each member's log and store, and to
// each watcher, so that a level of a 10,000-node run that writes 100 KB of
// JSON writes a fifth of it compressed. It uses zstd at its fastest level
// (github.com/klauspost/compress/zstd), a few hundred megabytes a second:
// well under the time etcd takes for the bytes saved.
//
// Pack returns a zstd frame, or nothing when compressing does not save an
// eighth; callers mark a packed value their own way (a byte their plain
// format never starts with). Unpack reads a frame back, bounded: a frame
// that says, or turns out, larger than the caller allows is refused before
// its bytes are allocated.
package zblob

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// MinSize is the smallest value Pack compresses: below it, the frame's
// header costs more than it saves.
const MinSize = 512

// MaxSize bounds what Unpack returns, whatever the caller allows: etcd
// refuses requests over 1.5 MiB by default, and no value reprise packs
// is larger than 64 MiB uncompressed.
const MaxSize = 64 << 20

var (
	codecOnce sync.Once
	enc       *zstd.Encoder
	dec       *zstd.Decoder
	codecErr  error
)

func codec() (*zstd.Encoder, *zstd.Decoder, error) {
	codecOnce.Do(func() {
		enc, codecErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true), zstd.WithEncoderCRC(true))
		if codecErr != nil {
			return
		}
		dec, codecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxSize), zstd.WithDecoderMaxWindow(8<<20))
	})
	return enc, dec, codecErr
}

// Pack returns data as one zstd frame appended to dst, and true; or dst
// and false when data is under MinSize or over MaxSize, or when the frame
// would not be an eighth smaller (the caller then stores data plain).
func Pack(dst, data []byte) ([]byte, bool) {
	if len(data) < MinSize || len(data) > MaxSize {
		return dst, false
	}
	e, _, err := codec()
	if err != nil {
		return dst, false
	}
	n := len(dst)
	out := e.EncodeAll(data, dst)
	if len(out)-n > len(data)-len(data)/8 {
		return out[:n], false
	}
	return out, true
}

// ErrTooLarge is Unpack's error for a frame larger than allowed.
var ErrTooLarge = errors.New("compressed value: larger than allowed once uncompressed")

// Unpack returns the bytes of the zstd frame z, which must say its size
// (Pack's do) and be at most max bytes once uncompressed (max is capped at
// MaxSize). A damaged frame gives an error, never a panic.
func Unpack(z []byte, max int) ([]byte, error) {
	max = min(max, MaxSize)
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		return nil, fmt.Errorf("compressed value: %w", err)
	}
	if !h.HasFCS {
		return nil, errors.New("compressed value: the frame does not say its size")
	}
	if h.FrameContentSize > uint64(max) {
		return nil, fmt.Errorf("%w (%d bytes, at most %d)", ErrTooLarge, h.FrameContentSize, max)
	}
	_, d, err := codec()
	if err != nil {
		return nil, err
	}
	out, err := d.DecodeAll(z, make([]byte, 0, h.FrameContentSize))
	if err != nil {
		return nil, fmt.Errorf("compressed value: %w", err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("%w (%d bytes, at most %d)", ErrTooLarge, len(out), max)
	}
	return out, nil
}
